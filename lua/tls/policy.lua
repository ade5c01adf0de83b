-- Certificate policy: checks stricter than libtls's, run on the peer's chain
-- after the handshake and before any application data is trusted.
--
--   local p = tls.policy{ pins = { "sha256//..." }, eku = "serverAuth" }
--   tls.connect(host, 443, { policy = p })
--   p(conn) --> true | nil, "policy: <rule>: <what failed>"
--
-- libtls has already verified the chain and the name when a policy runs; a
-- policy only narrows what is accepted. Rules see the verified path, never
-- the chain as sent: the peer may append any certificate, so only the leaf and
-- each CA certificate whose signature over the one before it checks (in the C
-- core, through libcrypto) count, and, when found, the configured CA
-- certificate that issued the last of them (the trust anchor).

local core = require "tls.core"
local x509 = require "tls.x509"
local base64 = require "tls.base64"
local hostname = require "tls.hostname"
local compat = require "tls.compat"

local policy = {}

local sformat, concat = string.format, table.concat

local DAY = 86400

--- Building blocks shared with tls.tofu

-- A pin in either form: "sha256//<base64>" (curl) or bare "<base64>" (HPKP).
-- Returns the bare base64 form, or nil and why it is not a pin.
function policy.normalize_pin(pin)
  if type(pin) ~= "string" then return nil, "a pin must be a string, got " .. type(pin) end
  local b64 = pin:match("^%s*sha256//(%S+)%s*$") or pin:match("^%s*(%S+)%s*$")
  if not b64 then return nil, "empty pin" end
  local raw = base64.decode(b64)
  if not raw or #raw ~= 32 then
    return nil, sformat("'%s' is not a SHA-256 pin (base64 of 32 bytes, as "
      .. "openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64 prints)", pin)
  end
  return b64
end

-- Parsed chains by their PEM text. The default policy runs on every client
-- connection, and repeat connections to a server send the same chain.
-- The certificate tables are shared, so checks must treat them as read-only.
local cache, cached, CACHE_MAX = {}, 0, 64

local function parse_cached(pem)
  local list = cache[pem]
  if not list then
    local err
    list, err = x509.parse_chain(pem)
    if not list then return nil, err end
    if cached >= CACHE_MAX then cache, cached = {}, 0 end
    cache[pem], cached = list, cached + 1
  end
  return compat.copy_list(list)
end

-- The peer's chain as a list of tls.x509 tables, leaf first.
function policy.peer_chain(conn)
  local ok, peer = pcall(conn.peer, conn)
  if not ok then return nil, "peer: " .. tostring(peer) end
  if not peer then return nil, "peer: the peer sent no certificate" end
  if not peer.chain_pem then return nil, "peer: no certificate chain to check" end
  local chain, err = parse_cached(peer.chain_pem)
  if not chain then return nil, "parse: " .. tostring(err) end
  -- A server's view of a client's chain may omit the leaf (OpenSSL's
  -- SSL_get_peer_cert_chain); put it first when peer() names it.
  local hash = peer.hash and peer.hash:match("^SHA256:(%x+)$")
  if hash then
    hash = hash:upper()
    local function fp(c) return (c.fingerprint_sha256:gsub(":", "")) end
    if fp(chain[1]) ~= hash then
      local found
      for i = 2, #chain do
        if fp(chain[i]) == hash then
          table.insert(chain, 1, table.remove(chain, i))
          found = true
          break
        end
      end
      -- without the peer's own certificate, the first one sent would pass
      -- for the leaf (whose key the handshake proved): never guess
      if not found then
        return nil, "peer: the certificate chain does not hold the peer's certificate ("
          .. peer.hash .. ")"
      end
    end
  end
  return chain, nil, peer.chain_pem
end

--- The verified path

-- Indices into a sent chain (leaf first) of the certificates that link up
-- from the leaf: each next one is a CA whose key verifies the signature of
-- the one before (core.x509_issued) and, unless `now` is nil (libtls checks
-- no time: insecure_noverifytime), that is valid at `now`, as libtls's own
-- verification requires: an expired cross-certificate from some other CA is
-- not on the path libtls verified. Cached by the chain's PEM text, as the
-- parse is, with the time span over which the same links hold.
local links_cache, links_cached = {}, 0
-- At most this many signature checks per chain: a peer that sends many
-- look-alike CA certificates gets a shorter path (stricter), not our CPU.
local LINK_CHECKS = 64

local function valid_at(cert, now)
  return now == nil or (cert.not_before <= now and now <= cert.not_after)
end

local function link_indices(pem, sent, now)
  local key = pem and ((now and "t" or "-") .. pem)
  local hit = key and links_cache[key]
  if hit and (now == nil or (hit.from <= now and now < hit.to)) then return hit end
  local list = { 1, from = -math.huge, to = math.huge }
  local used = { [sent[1].der] = true }
  local cur, checks_left = sent[1], LINK_CHECKS
  while true do
    local nxt
    for i = 2, #sent do
      local cand = sent[i]
      if not used[cand.der] and checks_left > 0 then
        checks_left = checks_left - 1
        if core.x509_issued(cur.der, cand.der) then
          if valid_at(cand, now) then
            nxt = i
            break
          end
          -- not yet valid: the links change when it becomes valid
          if cand.not_before > now then list.to = math.min(list.to, cand.not_before) end
        end
      end
    end
    if not nxt then break end
    cur = sent[nxt]
    used[cur.der] = true
    list[#list + 1] = nxt
    if now then
      list.from = math.max(list.from, cur.not_before)
      list.to = math.min(list.to, cur.not_after + 1)
    end
  end
  if key then
    if links_cached >= CACHE_MAX then links_cache, links_cached = {}, 0 end
    links_cache[key], links_cached = list, links_cached + 1
  end
  return list
end

-- The time CA certificates must be valid at: now, unless the config turned
-- libtls's time checks off (nil then). A config that cannot say (freed)
-- gets the time checked.
local function check_time_of(config)
  if config then
    local ok, _, _, notime = pcall(config.insecure, config)
    if ok and notime then return nil end
  end
  return os.time()
end

-- policy.verified_path(sent, verified [, config [, pem]]) -> path: the list
-- the rules see, leaf first. `verified` says whether libtls verified the
-- chain: without it only the leaf counts (its key is proven by the
-- handshake; nothing above it is). path.verified is that flag; path.anchor
-- is filled by policy.find_anchor.
function policy.verified_path(sent, verified, config, pem)
  local path = { sent[1], verified = verified and true or false, config = config }
  if verified then
    local idx = link_indices(pem, sent, check_time_of(config))
    for i = 2, #idx do path[i] = sent[idx[i]] end
  end
  return path
end

local anchors, anchors_cached = {}, 0

-- The configured CA certificate (ca, ca_file, ca_path or the system store of
-- the connection's config) that issued the path's last certificate, its
-- signature checked; the last certificate itself when it is one of them.
-- Sets and returns path.anchor, or nil (not verified, no config, not found).
function policy.find_anchor(path)
  if path.anchor ~= nil or not path.verified or not path.config then return path.anchor end
  local der = core.x509_anchor(path.config, path[#path].der)
  if not der then return nil end
  local cert = anchors[der]
  if not cert then
    cert = x509.parse(der)
    if not cert then return nil end
    if anchors_cached >= CACHE_MAX then anchors, anchors_cached = {}, 0 end
    anchors[der], anchors_cached = cert, anchors_cached + 1
  end
  path.anchor = cert
  return cert
end

-- Which side of the connection we are on: the context says, or the conn.
local function mode_of(conn, ctx)
  if ctx and ctx.mode then return ctx.mode end
  local ok, mode = pcall(function() return conn:mode() end)
  return ok and mode or "client"
end

--- Names and addresses

local function ipv4_bytes(s)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  local t = { a, b, c, d }
  for i = 1, 4 do
    -- no leading zeros: inet_pton refuses them, and "010" reads as octal elsewhere
    if #t[i] > 3 or (#t[i] > 1 and t[i]:sub(1, 1) == "0") or tonumber(t[i]) > 255 then
      return nil
    end
    t[i] = tonumber(t[i])
  end
  return string.char(t[1], t[2], t[3], t[4])
end

-- RFC 4291 text to 16 bytes, or nil.
local function ipv6_bytes(s)
  s = s:lower()
  if s:find("[^0-9a-f:.]") or #s > 45 then return nil end
  local head, tail = s, nil
  local dc = s:find("::", 1, true)
  if dc then
    head, tail = s:sub(1, dc - 1), s:sub(dc + 2)
    if tail:find("::", 1, true) then return nil end
  end
  local function groups(part, last)
    local out = {}
    if part == "" then return out end
    local list = {}
    for g in (part .. ":"):gmatch("([^:]*):") do list[#list + 1] = g end
    for i, g in ipairs(list) do
      if i == #list and last and g:find(".", 1, true) then
        local v4 = ipv4_bytes(g)
        if not v4 then return nil end
        local b1, b2, b3, b4 = v4:byte(1, 4)
        out[#out + 1] = b1 * 256 + b2
        out[#out + 1] = b3 * 256 + b4
      else
        if not g:match("^%x%x?%x?%x?$") then return nil end
        out[#out + 1] = tonumber(g, 16)
      end
    end
    return out
  end
  local h, t = groups(head, tail == nil), {}
  if tail then t = groups(tail, true) end
  if not h or not t then return nil end
  local n = #h + #t
  if (dc and n > 7) or (not dc and n ~= 8) then return nil end
  local words = {}
  for _, w in ipairs(h) do words[#words + 1] = w end
  for _ = 1, 8 - n do words[#words + 1] = 0 end
  for _, w in ipairs(t) do words[#words + 1] = w end
  local bytes = {}
  for i = 1, 8 do
    bytes[#bytes + 1] = string.char(math.floor(words[i] / 256), words[i] % 256)
  end
  return concat(bytes)
end

-- The bytes of an IP address in text form, or nil when it is a host name.
function policy.ip_bytes(s)
  if type(s) ~= "string" then return nil end
  s = s:match("^%[(.*)%]$") or s
  if s:find(":", 1, true) then return ipv6_bytes(s) end
  return ipv4_bytes(s)
end

-- libtls's host name rule (tls.hostname): case-insensitive, a wildcard only
-- as the whole left-most label and never over a bare suffix ("*.example.com"
-- yes; "*.com", "f*.example.com" no). Names are compared as given.
policy.name_matches = hostname.matches

-- Does the leaf's SAN cover `host`, the name a client asked for? IPs match
-- iPAddress entries only and names match dNSName entries only; the subject
-- CN is never looked at. A trailing dot is dropped first, as a libtls client
-- does before it sends and matches the name.
function policy.san_covers(cert, host)
  local san = cert.san
  if not san then return false end
  host = hostname.client_name(host)
  local ip = policy.ip_bytes(host)
  if ip then
    for _, text in ipairs(san.ip) do
      if policy.ip_bytes(text) == ip then return true end
    end
    return false
  end
  for _, name in ipairs(san.dns) do
    if hostname.matches(name, host) then return true end
  end
  return false
end

--- Rules

local function short(cert)
  return "'" .. (cert.subject_string ~= "" and cert.subject_string or "(empty subject)") .. "'"
end

local function position(i)
  return i == 1 and "the leaf" or ("certificate " .. i .. " of the verified path")
end

-- A name (cert.issuer or cert.subject) as libtls's peer().issuer prints it:
-- "/CN=a/O=b". tls.x509's own form is cert.issuer_string, cert.subject_string.
local function slash_form(name)
  local slash = {}
  for _, a in ipairs(name) do slash[#slash + 1] = "/" .. a.type .. "=" .. a.value end
  return concat(slash)
end

local checks = {}

function checks.require_san(rules, chain, conn, ctx)
  if not rules.require_san or mode_of(conn, ctx) ~= "client" then return true end
  -- The rule is about which names a certificate is matched on: with name
  -- checks off (insecure_noverifyname) no name is matched, so it has no job.
  if ctx and ctx.verify_name == false then return true end
  local leaf = chain[1]
  local san = leaf.san
  if not san or (#san.dns == 0 and #san.ip == 0) then
    return nil, sformat("the server certificate %s has no DNS or IP subjectAltName "
      .. "(names in the subject CN are not accepted; use require_san = false to allow them)",
      short(leaf))
  end
  -- libtls has matched the name already; match again here, on the SAN only
  -- (a direct call without ctx cannot say which name was asked for).
  if not (ctx and ctx.verify_name) then return true end
  local host = ctx.servername
  if host == nil and conn ~= nil then
    local ok, info = pcall(conn.info, conn)
    host = ok and info and info.servername or nil
  end
  if host and not policy.san_covers(leaf, host) then
    return nil, sformat("the server certificate %s does not name '%s' in its "
      .. "subjectAltName (DNS: %s; IP: %s)", short(leaf), host,
      concat(san.dns, ", "), concat(san.ip, ", "))
  end
  return true
end

-- Signature algorithms whose hash has practical collisions: a CA's
-- signature made with one can be transplanted onto a forged certificate.
-- OpenSSL 3's security level refuses them; LibreSSL's libtls does not, so the
-- policy does, whichever libtls is linked. (tls.x509's signature_hash, which
-- reads RSA-PSS parameters too.)
local weak_signatures = { md2 = "MD2", md4 = "MD4", md5 = "MD5", sha1 = "SHA-1" }

-- Every signature the path relies on: each certificate's, except the
-- self-signature of a self-issued certificate at the top (a root's own
-- signature proves nothing; its trust comes from the configuration).
function checks.strong_signatures(rules, path)
  if not rules.strong_signatures then return true end
  for i, cert in ipairs(path) do
    local hash = weak_signatures[cert.signature_hash]
    local self_signed_top = i == #path and cert.issuer_string == cert.subject_string
    if hash and not self_signed_top then
      return nil, sformat("%s %s is signed with %s, a %s signature (%s collisions are "
        .. "practical, so such a signature can be forged onto another certificate); "
        .. "strong_signatures = false allows it", position(i), short(cert),
        cert.signature_algorithm, hash, hash)
    end
  end
  return true
end

local function key_bits_check(chain, kind, min)
  if not min then return true end
  for i, cert in ipairs(chain) do
    local key = cert.public_key
    local t = key.type == "rsa-pss" and "rsa" or key.type
    if t == kind and (key.bits or 0) < min then
      return nil, sformat("%s %s has a %d-bit %s key, below the minimum of %d bits",
        position(i), short(cert), key.bits or 0, kind == "rsa" and "RSA" or "EC", min)
    end
  end
  return true
end

function checks.min_rsa_bits(rules, chain)
  return key_bits_check(chain, "rsa", rules.min_rsa_bits)
end

function checks.min_ec_bits(rules, chain)
  return key_bits_check(chain, "ec", rules.min_ec_bits)
end

function checks.max_validity_days(rules, chain)
  local max = rules.max_validity_days
  if not max then return true end
  local leaf = chain[1]
  local days = (leaf.not_after - leaf.not_before) / DAY
  if days > max then
    return nil, sformat("the leaf %s is valid for %.0f days (%s to %s), more than %s",
      short(leaf), days, os.date("!%Y-%m-%d", leaf.not_before),
      os.date("!%Y-%m-%d", leaf.not_after), tostring(max))
  end
  return true
end

-- The names and keys of issuers that the path proves. The leaf's issuer
-- name is proven by libtls's verification (it is inside the signed leaf).
-- Each CA certificate of the path proves its key (it verified a signature);
-- its names are proven only from the top down, so only when the path reached
-- a trust anchor: then every name of the path and the anchor's count.
local function proven_issuers(path)
  local anchor = policy.find_anchor(path)
  local names, keys = { path[1].issuer_string, slash_form(path[1].issuer) }, {}
  for i = 2, #path do keys[#keys + 1] = path[i].spki_sha256 end
  if anchor then
    for i = 2, #path do
      local c = path[i]
      names[#names + 1] = c.subject_string
      names[#names + 1] = slash_form(c.subject)
      names[#names + 1] = c.issuer_string
      names[#names + 1] = slash_form(c.issuer)
    end
    names[#names + 1] = anchor.subject_string
    names[#names + 1] = slash_form(anchor.subject)
    keys[#keys + 1] = anchor.spki_sha256
  end
  return names, keys, anchor
end

function checks.issuers(rules, path)
  local list = rules.issuers
  if not list then return true end
  if not path.verified then
    return nil, "chain verification is off (insecure_noverifycert), so no certificate "
      .. "above the leaf is proven and no issuer can be trusted; pin the leaf's key "
      .. "with 'pins' instead"
  end
  local names, keys, anchor = proven_issuers(path)
  for _, n in ipairs(names) do
    if list.names[n] then return true end
  end
  for _, k in ipairs(keys) do
    if list.pins[k] then return true end
  end
  local seen = {}
  for i, cert in ipairs(path) do seen[i] = "'" .. cert.issuer_string .. "'" end
  return nil, "no certificate of the verified path was issued by an allowed issuer (issuers seen: "
    .. concat(seen, ", ") .. (anchor and "" or "; no trusted CA certificate was found above "
    .. "the path, so only the leaf's issuer name and the keys of its CAs count") .. ")"
end

function checks.eku(rules, chain)
  local want = rules.eku
  if not want then return true end
  local leaf = chain[1]
  local have = leaf.extended_key_usage
  for _, name in ipairs(want) do
    if not (have and have[name]) then
      return nil, sformat("the leaf %s does not list the extended key usage '%s' (it has: %s)",
        short(leaf), name, have and concat(have, ", ") or "no extendedKeyUsage extension")
    end
  end
  return true
end

-- A key on the verified path is proven: the leaf's by the handshake, each
-- CA's by the signature it verified, the anchor's by the configuration.
function checks.pins(rules, path)
  local pins = rules.pins
  if not pins then return true end
  for _, cert in ipairs(path) do
    if pins.set[cert.spki_sha256] then return true end
  end
  local anchor = policy.find_anchor(path)
  if anchor and pins.set[anchor.spki_sha256] then return true end
  return nil, sformat("no certificate of the verified path matches any of the %d pin(s)%s; "
    .. "the leaf's pin is sha256//%s", pins.n,
    path.verified and "" or " (chain verification is off: only the leaf's key counts)",
    path[1].spki_sha256)
end

function checks.expires_within(rules, chain, conn)
  local within = rules.expires_within
  if not within then return true end
  local now = os.time()
  for i, cert in ipairs(chain) do
    local left = (cert.not_after - now) / DAY
    if left <= within then
      local ok, err = pcall(rules.on_expiring, cert, left, conn, i)
      if not ok then return nil, "on_expiring raised: " .. tostring(err) end
    end
  end
  return true
end

function checks.check(rules, chain, conn, ctx)
  local fn = rules.check
  if not fn then return true end
  policy.find_anchor(chain)
  local ok, passed, reason = pcall(fn, chain, conn, ctx)
  if not ok then return nil, "raised: " .. tostring(passed) end
  if passed then return true end
  return nil, tostring(reason or "rejected by the custom check")
end

-- The order checks run in: the cheap structural ones first, the warning after
-- every rule that can fail on its own, the user's function last.
local order = {
  "require_san", "strong_signatures", "min_rsa_bits", "min_ec_bits", "max_validity_days",
  "issuers", "eku", "pins", "expires_within", "check",
}

--- Building a policy

local function default_on_expiring(cert, days_left)
  compat.warn(sformat("lua-tls: certificate %s expires in %.1f days (%s)", short(cert),
    days_left, os.date("!%Y-%m-%d %H:%M:%S UTC", cert.not_after)))
end

--- Compiling rules: one compiler per rule, like the checks. Each gets the
-- rule's value and what was compiled before it, and returns what its check
-- reads (nil: the rule is off), or fails with a message that compile reports
-- at the caller's line.

local function fail(fmt, ...) error({ sformat(fmt, ...) }) end

local function callable(v)
  return type(v) == "function" or (getmetatable(v) or {}).__call ~= nil
end

local function boolean_rule(name, default)
  return function(v)
    if v == nil then return default end
    if type(v) ~= "boolean" then fail("rule '%s' must be a boolean, got %s", name, type(v)) end
    return v
  end
end

local function number_rule(name, min, default)
  return function(v)
    if v == nil then return default end
    if v == false then return nil end
    if type(v) ~= "number" or v ~= v or v < min then
      fail("rule '%s' must be a number >= %s, got %s", name, min,
        type(v) == "number" and tostring(v) or type(v))
    end
    return v
  end
end

local function string_list(name, v)
  if v == nil or v == false then return nil end
  if type(v) == "string" then v = { v } end
  if type(v) ~= "table" then
    fail("rule '%s' must be a string or a list of strings, got %s", name, type(v))
  end
  local out = {}
  for i, s in ipairs(v) do
    if type(s) ~= "string" then fail("rule '%s' entry %d must be a string, got %s", name, i, type(s)) end
    out[#out + 1] = s
  end
  if #out == 0 then fail("rule '%s' is an empty list (it would reject everything)", name) end
  return out
end

local compilers = {
  require_san = boolean_rule("require_san", true),
  strong_signatures = boolean_rule("strong_signatures", true),
  min_rsa_bits = number_rule("min_rsa_bits", 0, 2048),
  min_ec_bits = number_rule("min_ec_bits", 0),
  max_validity_days = number_rule("max_validity_days", 0),
  expires_within = number_rule("expires_within", 0),
}

function compilers.on_expiring(v, r)
  if v == nil then return default_on_expiring end
  if not callable(v) then fail("rule 'on_expiring' must be a function, got %s", type(v)) end
  if not r.expires_within then fail("rule 'on_expiring' needs 'expires_within' (days)") end
  return v
end

function compilers.pins(v)
  if type(v) == "string" then
    -- curl's --pinnedpubkey form: "sha256//A;sha256//B"
    local list = {}
    for p in v:gmatch("[^;]+") do list[#list + 1] = p end
    v = list
  end
  if v == nil or v == false then return nil end
  if type(v) ~= "table" then fail("rule 'pins' must be a list of pins, got %s", type(v)) end
  local set, n = {}, 0
  for i, p in ipairs(v) do
    local b64, err = policy.normalize_pin(p)
    if not b64 then fail("pins[%d]: %s", i, err) end
    set[b64] = true
    n = n + 1
  end
  if n == 0 then fail("rule 'pins' is an empty list (it would reject everything)") end
  return { set = set, n = n }
end

-- Names of allowed issuers, and pins of their keys ("sha256//..." or a bare
-- 44-character base64 pin).
function compilers.issuers(v)
  local list = string_list("issuers", v)
  if not list then return nil end
  local names, pins = {}, {}
  for _, s in ipairs(list) do
    local b64 = s:find("^sha256//") and policy.normalize_pin(s)
      or (#s == 44 and s:find("^[%w+/]+=$") and policy.normalize_pin(s))
    if s:find("^sha256//") and not b64 then fail("issuers: '%s' is not a valid pin", s) end
    if b64 then pins[b64] = true else names[s] = true end
  end
  return { names = names, pins = pins }
end

function compilers.eku(v) return string_list("eku", v) end

function compilers.check(v)
  if v ~= nil and not callable(v) then
    fail("rule 'check' must be a function(chain, conn, ctx), got %s", type(v))
  end
  return v
end

-- Rule names in the order they compile (on_expiring after expires_within)
-- and are listed in messages.
local rule_names = {
  "pins", "require_san", "strong_signatures", "min_rsa_bits", "min_ec_bits",
  "max_validity_days", "expires_within", "on_expiring", "issuers", "eku", "check",
}

local Policy = {}
Policy.__index = Policy
Policy.__name = "tls.policy"

local function compile(rules)
  if rules == nil then rules = {} end
  if type(rules) ~= "table" then
    error("tls.policy: rules must be a table, got " .. type(rules), 3)
  end
  for k in pairs(rules) do
    if not compilers[k] then
      error(sformat("tls.policy: unknown rule '%s' (known: %s)", tostring(k),
        concat(rule_names, ", ")), 3)
    end
  end
  local r = {}
  for _, name in ipairs(rule_names) do
    local ok, v = pcall(compilers[name], rules[name], r)
    if not ok then
      error("tls.policy: " .. (type(v) == "table" and v[1] or tostring(v)), 3)
    end
    r[name] = v
  end
  return r
end

-- Whether libtls verified the peer's chain, and the config it trusted.
-- tls.connect, tls.wrap and tls.engine pass both in ctx for a client; a
-- server-side conn has its server's config. A client conn checked without
-- ctx counts as unverified: nothing says its chain was checked.
local function verification_of(conn, ctx)
  if ctx and ctx.verify_cert ~= nil then return ctx.verify_cert, ctx.config end
  if conn ~= nil and mode_of(conn, ctx) == "server" then
    local ok, cfg = pcall(function() return conn:config() end)
    if ok and cfg then return not cfg:insecure(), cfg end
  end
  return false, nil
end

local function run(self, path, conn, ctx)
  local rules = self.rules
  for _, name in ipairs(order) do
    local ok, why = checks[name](rules, path, conn, ctx)
    if not ok then return nil, "policy: " .. name .. ": " .. tostring(why) end
  end
  return true
end

-- policy:check_chain(chain, conn, ctx) -> true | nil, "policy: <rule>: <what>"
-- for a chain already parsed (a list of tls.x509 tables, leaf first, as
-- sent). The rules see its verified path (see verification_of).
function Policy:check_chain(chain, conn, ctx)
  if type(chain) ~= "table" or not chain[1] then
    return nil, "policy: peer: no certificate to check"
  end
  local verified, config = verification_of(conn, ctx)
  return run(self, policy.verified_path(chain, verified, config), conn, ctx)
end

-- policy(conn [, ctx]) -> true | nil, reason. ctx is what tls.connect passes
-- ({mode, host, port, servername, verify_name, verify_cert, config}); a
-- direct call may omit it.
function Policy:__call(conn, ctx)
  local chain, err, pem = policy.peer_chain(conn)
  if not chain then return nil, "policy: " .. err end
  local verified, config = verification_of(conn, ctx)
  return run(self, policy.verified_path(chain, verified, config, pem), conn, ctx)
end

function Policy:__tostring()
  local on = {}
  for _, name in ipairs(order) do
    if self.rules[name] then on[#on + 1] = name end
  end
  return "tls.policy (" .. concat(on, ", ") .. ")"
end

-- tls.policy.new(rules) -> policy; tls.policy(rules) is the same.
-- (compile raises at the caller's line: keep both at the same call depth)
function policy.new(rules)
  return setmetatable({ rules = compile(rules) }, Policy)
end

-- What every client connection gets when opts.policy is not given.
policy.default = policy.new {}

return setmetatable(policy, {
  __call = function(_, rules) return setmetatable({ rules = compile(rules) }, Policy) end,
  -- tls.policy.strict (lua/tls/strict.lua) loads on first use.
  __index = function(_, k)
    if k == "strict" then return require("tls.strict").policy end
  end,
})
