-- tls.policy.strict: a ready policy for public-web server names. It runs the
-- default policy (tls.policy.default), then refuses certificates that break a
-- MUST of RFC 5280 or of the CA/Browser Forum Baseline Requirements (BR) which
-- OpenSSL does not check. Each rule names its reference in its message.
--
--   tls.connect(host, 443, { policy = tls.policy.strict })
--   --> nil, "policy: strict: serial: the leaf serial number is zero (RFC 5280 4.1.2.2)"
--
-- The rules look at the verified path tls.policy gives its rules (the leaf
-- first, then the CA certificates above it) and, when tls.policy found it, at
-- the trust anchor the path ended at (path.anchor). A rule only ever refuses: it never
-- makes a certificate acceptable that libtls refused.

local asn1 = require "tls.asn1"
local policy = require "tls.policy"

local strict = {}

local read, children, is, value = asn1.read, asn1.children, asn1.is, asn1.value
local sformat, concat = string.format, table.concat

-- The extension with this OID, or nil.
local function ext(cert, oid)
  for _, e in ipairs(cert.extensions) do
    if e.oid == oid then return e end
  end
end

local OID = {
  san = "2.5.29.17", bc = "2.5.29.19", nc = "2.5.29.30", pc = "2.5.29.36",
  eku = "2.5.29.37", aia = "1.3.6.1.5.5.7.1.1", aki = "2.5.29.35",
}

local function is_ca(cert)
  return cert.basic_constraints and cert.basic_constraints.ca
end

local function self_issued(cert)
  return cert.subject_string == cert.issuer_string
end

-- A single DER value filling all of `s`, or nil.
local function whole(s)
  local node, nxt = read(s, 1)
  if node and nxt == #s + 1 then return node end
end

--- Names

local function lower(s) return (s:gsub("%u", string.lower)) end

-- RFC 1034 3.5 preferred name syntax (as RFC 5280 4.2.1.6 requires of a
-- dNSName), with at most a "*" as the whole left-most label (RFC 6125 6.4.3).
local function dns_syntax_error(name)
  if name == "" then return "is empty" end
  if #name > 253 then return "is longer than 253 characters" end
  local labels = {}
  for label in (name .. "."):gmatch("([^.]*)%.") do labels[#labels + 1] = label end
  for i, label in ipairs(labels) do
    if label == "" then return "has an empty label" end
    if not (i == 1 and label == "*" and #labels > 1) then
      if #label > 63 then return "has a label longer than 63 characters" end
      if label:find("[^%w%-]") then return "has a character other than a letter, digit or hyphen" end
      if label:sub(1, 1) == "-" or label:sub(-1) == "-" then return "has a label that starts or ends with a hyphen" end
    end
  end
end

-- Is `name` (a host name) inside the DNS subtree `base` (RFC 5280 4.2.1.10)?
local function in_dns_subtree(name, base)
  name, base = lower(name), lower(base)
  return name == base or name:sub(-(#base + 1)) == "." .. base
end

-- Could the wildcard "*.<rest>" cover a name inside subtree `base`? It covers
-- exactly one label in front of <rest>.
local function wildcard_meets_subtree(rest, base)
  rest, base = lower(rest), lower(base)
  if in_dns_subtree(rest, base) then return true end
  local first, tail = base:match("^([^.]+)%.(.+)$")
  return first ~= nil and tail == rest
end

-- Is every name the wildcard "*.<rest>" covers inside subtree `base`?
local function wildcard_within_subtree(rest, base)
  return in_dns_subtree(rest, base)
end

local function ip_in_subnet(addr, subnet)
  local n = #addr
  if #subnet ~= 2 * n then return false end
  for i = 1, n do
    local a, b, m = addr:byte(i), subnet:byte(i), subnet:byte(n + i)
    -- (a AND m) == (b AND m), bit by bit without 5.3 operators
    for bit = 7, 0, -1 do
      local p = 2 ^ bit
      if math.floor(m / p) % 2 == 1 and math.floor(a / p) % 2 ~= math.floor(b / p) % 2 then
        return false
      end
    end
  end
  return true
end

--- Name constraints (RFC 5280 4.2.1.10)

-- Parses a nameConstraints value into {permitted = {...}, excluded = {...}},
-- each a list of {kind = "dns"|"ip"|"other", value = ...}; or nil, why.
local function parse_name_constraints(der)
  local seq = whole(der)
  if not seq or not is(seq, asn1.SEQUENCE) then return nil, "is not a SEQUENCE" end
  local parts, err = children(seq)
  if not parts then return nil, err end
  local nc = {}
  for _, part in ipairs(parts) do
    if part.class ~= asn1.CONTEXT or (part.tag ~= 0 and part.tag ~= 1) or not part.constructed then
      return nil, "holds something other than permittedSubtrees [0] and excludedSubtrees [1]"
    end
    local which = part.tag == 0 and "permitted" or "excluded"
    if nc[which] then return nil, "repeats " .. which .. "Subtrees" end
    local subtrees = children(part)
    if not subtrees or #subtrees == 0 then
      return nil, which .. "Subtrees is empty (BR 7.1.2.5.2 and RFC 5280: at least one subtree)"
    end
    local list = {}
    for _, st in ipairs(subtrees) do
      local f = is(st, asn1.SEQUENCE) and children(st)
      if not f or not f[1] then return nil, "has a malformed GeneralSubtree" end
      local base, entry = f[1], { kind = "other" }
      if base.class == asn1.CONTEXT and base.tag == 2 and not base.constructed then
        entry.kind, entry.value = "dns", value(base)
      elseif base.class == asn1.CONTEXT and base.tag == 7 and not base.constructed then
        entry.kind, entry.value = "ip", value(base)
      end
      list[#list + 1] = entry
    end
    nc[which] = list
  end
  if not nc.permitted and not nc.excluded then
    return nil, "has neither permittedSubtrees nor excludedSubtrees (RFC 5280 4.2.1.10)"
  end
  return nc
end

-- Why the leaf's SAN breaks the constraints of CA certificate `ca`, or nil.
-- OpenSSL applies name constraints to plain names; wildcard names (a
-- wildcard that can reach an excluded name, or leave the permitted ones,
-- CVE-2025-61727) are what this adds.
local function nc_violation(nc, san)
  for _, name in ipairs(san.dns) do
    local rest = name:match("^%*%.(.+)$")
    for _, c in ipairs(nc.excluded or {}) do
      if c.kind == "dns" and c.value ~= "" then
        if (rest and wildcard_meets_subtree(rest, c.value)) or (not rest and in_dns_subtree(name, c.value)) then
          return sformat("the leaf's name %s falls in the excluded subtree %s", name, c.value)
        end
      end
    end
    local permitted, any = false, false
    for _, c in ipairs(nc.permitted or {}) do
      if c.kind == "dns" then
        any = true
        if c.value == "" or (rest and wildcard_within_subtree(rest, c.value))
          or (not rest and in_dns_subtree(name, c.value)) then
          permitted = true
        end
      end
    end
    if any and not permitted then
      return sformat("the leaf's name %s is outside every permitted DNS subtree", name)
    end
  end
  for _, text in ipairs(san.ip) do
    local addr = policy.ip_bytes(text)
    if addr then
      for _, c in ipairs(nc.excluded or {}) do
        if c.kind == "ip" and ip_in_subnet(addr, c.value) then
          return sformat("the leaf's address %s falls in an excluded subnet", text)
        end
      end
      local permitted, any = false, false
      for _, c in ipairs(nc.permitted or {}) do
        if c.kind == "ip" and #c.value == 2 * #addr then
          any = true
          if ip_in_subnet(addr, c.value) then permitted = true end
        end
      end
      if any and not permitted then
        return sformat("the leaf's address %s is outside every permitted subnet", text)
      end
    end
  end
end

--- The rules: each gets (cert, role, path) where role is "leaf",
--- "intermediate" or "anchor", and returns nil or what is wrong.

local rules = {}
strict.rules = rules

local function rule(name, ref, roles, fn)
  local set = {}
  for r in roles:gmatch("%a+") do set[r] = true end
  rules[#rules + 1] = { name = name, ref = ref, roles = set, check = fn }
end

local ALL, CAS, LEAF = "leaf intermediate anchor", "intermediate anchor", "leaf"

-- The trust anchor's own encoding (its serial number, SKI, the criticality
-- of its basicConstraints) is the user's configuration, not checked: roots
-- the public web trusts break these MUSTs (serial 0 in Go Daddy and Starfield
-- G2, SECOM, HARICA; a non-critical basicConstraints in Go Daddy and
-- Starfield Class 2, Chunghwa ePKI; no SKI in TWCA Global Root CA, all in
-- Debian's ca-certificates). Its key, its constraints, a missing
-- basicConstraints and the BR root profile's EKU and AKI rules are checked.
rule("serial", "RFC 5280 4.1.2.2", "leaf intermediate", function(cert)
  local hex = cert.serial
  if hex == "00" then return "serial number is zero" end
  if hex:sub(1, 1) == "-" then return "serial number is negative" end
  local octets = #hex / 2 + (tonumber(hex:sub(1, 1), 16) >= 8 and 1 or 0)
  if octets > 20 then return sformat("serial number is %d octets long (at most 20)", octets) end
end)

rule("authority_key_id", "RFC 5280 4.2.1.1", "leaf intermediate", function(cert, role)
  if role == "intermediate" and self_issued(cert) then return end
  if not cert.authority_key_id then
    return "has no authorityKeyIdentifier keyIdentifier"
  end
end)

rule("root_authority_key_id", "BR 7.1.2.1.3", "anchor", function(cert)
  -- (tls.x509 leaves authority_key_id nil both without the extension and
  -- without its keyIdentifier: the extension list tells them apart)
  if ext(cert, OID.aki) and not cert.authority_key_id then
    return "has an authorityKeyIdentifier without keyIdentifier"
  end
end)

rule("subject_key_id", "RFC 5280 4.2.1.2", "intermediate", function(cert)
  if not cert.subject_key_id then return "is a CA certificate without subjectKeyIdentifier" end
end)

rule("basic_constraints", "RFC 5280 4.2.1.9", "anchor", function(cert)
  local e = ext(cert, OID.bc)
  if not e then return "is a CA certificate without basicConstraints" end
end)

rule("policy_constraints", "RFC 5280 4.2.1.11", CAS, function(cert)
  local e = ext(cert, OID.pc)
  if e and not e.critical then return "has a non-critical policyConstraints" end
end)

rule("name_constraints", "RFC 5280 4.2.1.10", ALL, function(cert, role, path)
  local e = ext(cert, OID.nc)
  if not e then return end
  if role == "leaf" and not is_ca(cert) then return "is not a CA certificate but has nameConstraints" end
  -- a trust anchor's constraints are the user's configuration: webpki takes
  -- them non-critical too (webpki::nc::permitted-dns-match-noncritical)
  if not e.critical and role ~= "anchor" then return "has a non-critical nameConstraints" end
  local nc, why = parse_name_constraints(e.value)
  if not nc then return "has nameConstraints that " .. why end
  for _, list in ipairs({ nc.permitted or {}, nc.excluded or {} }) do
    for _, c in ipairs(list) do
      if c.kind == "dns" and c.value ~= "" and dns_syntax_error(c.value) then
        return sformat("nameConstraints DNS subtree '%s' %s", c.value, dns_syntax_error(c.value))
      end
    end
  end
  local leaf = path[1]
  if role ~= "leaf" and leaf.san then
    local v = nc_violation(nc, leaf.san)
    if v then return "has nameConstraints the leaf breaks: " .. v end
  end
end)

rule("san_syntax", "RFC 5280 4.2.1.6", LEAF, function(cert)
  for _, name in ipairs(cert.san and cert.san.dns or {}) do
    local why = dns_syntax_error(name)
    if why then return sformat("subjectAltName DNS name '%s' %s", name, why) end
  end
end)

rule("san_critical", "RFC 5280 4.2.1.6, BR 7.1.2.7.12", LEAF, function(cert)
  local e = ext(cert, OID.san)
  if not e then return end
  if #cert.subject == 0 and not e.critical then
    return "has an empty subject and a non-critical subjectAltName"
  end
  if #cert.subject > 0 and e.critical then
    return "has a subject and a critical subjectAltName"
  end
end)

rule("leaf_is_ca", "RFC 5280 4.2.1.9, BR 7.1.2.7.8", LEAF, function(cert)
  if cert.key_usage and cert.key_usage.keyCertSign and not is_ca(cert) then
    return "has keyUsage keyCertSign without basicConstraints cA"
  end
  if is_ca(cert) and not (cert.key_usage and cert.key_usage.keyCertSign) then
    return "has basicConstraints cA without keyUsage keyCertSign"
  end
end)

rule("leaf_eku", "BR 7.1.2.7.6, 7.1.2.7.10", LEAF, function(cert)
  local e = ext(cert, OID.eku)
  -- (a leaf without extKeyUsage is left alone: BR 7.1.2.7.6 requires one,
  -- RFC 5280 does not, and x509-limbo holds valid certificates without it)
  if not e then return end
  if e.critical then return "has a critical extKeyUsage" end
  if cert.extended_key_usage.anyExtendedKeyUsage then return "has extKeyUsage anyExtendedKeyUsage" end
end)

rule("root_eku", "BR 7.1.2.1.2", "anchor", function(cert)
  if ext(cert, OID.eku) then return "is a root with extKeyUsage" end
end)

rule("aia", "BR 7.1.2.7.7, RFC 5280 4.2.2.1", ALL, function(cert)
  local e = ext(cert, OID.aia)
  if not e then return end
  local seq = whole(e.value)
  local list = seq and is(seq, asn1.SEQUENCE) and children(seq)
  if not list or #list == 0 then return "has a malformed or empty authorityInfoAccess" end
  for _, ad in ipairs(list) do
    local f = is(ad, asn1.SEQUENCE) and children(ad)
    if not f or #f ~= 2 or not is(f[1], asn1.OID) or f[2].class ~= asn1.CONTEXT then
      return "has a malformed authorityInfoAccess entry"
    end
  end
end)

rule("key_type", "BR 6.1.5", ALL, function(cert)
  local key = cert.public_key
  if key.type == "dsa" then return "has a DSA key" end
  if (key.type == "rsa" or key.type == "rsa-pss") and key.bits % 8 ~= 0 then
    return sformat("has an RSA modulus of %d bits, not a multiple of 8", key.bits)
  end
end)

-- A CN must be one of the SAN values, character for character (BR
-- 7.1.4.3). Applied where the CN is evidently meant as a host name or an
-- address (an IP address in any spelling, a non-ASCII or punycode name, a
-- SAN name in other letter case, a host beside the SAN's hosts); a CN that
-- names the domain the SAN's hosts are under, or is not a host name at all,
-- is left alone, as RFC 5280 allows (and as valid certificates do).
local function cn_problem(cn, san)
  local dns, ip = san and san.dns or {}, san and san.ip or {}
  for _, v in ipairs(dns) do if v == cn then return end end
  for _, v in ipairs(ip) do if v == cn then return end end
  -- an address in any spelling a resolver or inet_aton would take
  local ipv4ish = cn:match("^%d+%.%d+%.%d+%.%d+$") or cn:match("^0[xX]%x+$")
  local _, colons = cn:gsub(":", "")
  if ipv4ish or (colons >= 2 and cn:match("^[%x:.]+$")) then
    return "is an IP address not spelt as in the SAN (RFC 3986 dotted decimal, RFC 5952 for IPv6)"
  end
  -- from here on only a CN that looks like a domain name is examined
  if not cn:find(".", 1, true) or cn:find("%s") then return end
  if cn:find("[\128-\255]") then return "is not ASCII: a name must be the SAN's A-label (punycode) form" end
  for _, v in ipairs(dns) do
    if lower(v) == lower(cn) then return "differs from the SAN name " .. v .. " in letter case" end
  end
  if dns_syntax_error(cn) then return end
  if lower(cn):find("^xn%-%-") or lower(cn):find("%.xn%-%-") then
    return "is an internationalized (punycode) name the SAN does not hold"
  end
  if #dns == 0 then return end
  for _, v in ipairs(dns) do
    local under = v:match("^%*%.(.+)$") or v
    if in_dns_subtree(under, cn) or policy.name_matches(v, cn) then return end
  end
  return "names a host the SAN does not hold"
end

rule("common_name", "BR 7.1.4.3", LEAF, function(cert)
  for _, a in ipairs(cert.subject) do
    if a.type == "CN" then
      local why = cn_problem(a.value, cert.san)
      if why then return sformat("subject CN '%s' %s", a.value, why) end
    end
  end
end)

--- Running the rules

local function role_name(role, i)
  if role == "leaf" then return "the leaf" end
  if role == "anchor" then return "the trust anchor" end
  return "certificate " .. i .. " of the path"
end

-- strict.check_path(path [, anchor]) -> true | nil, "<rule>: <what> (<ref>)"
-- path: tls.x509 tables, leaf first; anchor: the trusted certificate that
-- issued the last one (a tls.x509 table), when known.
function strict.check_path(path, anchor)
  local certs = {}
  for i, c in ipairs(path) do
    local role = i == 1 and "leaf" or "intermediate"
    -- a root the peer sent along is the anchor, not an intermediate
    if i > 1 and anchor and c.der == anchor.der then role = "anchor" end
    certs[#certs + 1] = { c, role, i }
  end
  if anchor and path[#path].der ~= anchor.der then certs[#certs + 1] = { anchor, "anchor", #path + 1 } end
  for _, r in ipairs(rules) do
    for _, e in ipairs(certs) do
      local cert, role, i = e[1], e[2], e[3]
      if r.roles[role] then
        local why = r.check(cert, role, path)
        if why then
          return nil, sformat("%s: %s %s (%s)", r.name, role_name(role, i), why, r.ref)
        end
      end
    end
  end
  return true
end

-- The policy: tls.policy's own machinery (the default rules, then ours as its
-- last rule), so the rules get what any tls.policy gets: the path its rules
-- see and, when tls.policy found it, the trust anchor (path.anchor). A
-- failure of our rule reads "policy: strict: ..." instead of "policy: check: ...".
local inner = policy.new { check = function(path)
  return strict.check_path(path, path.anchor)
end }

local function renamed(ok, err)
  if ok then return ok end
  return nil, (tostring(err):gsub("^policy: check: ", "policy: strict: "))
end

local Strict = { __name = "tls.policy" }
Strict.__index = Strict

function Strict:check_chain(chain, conn, ctx)
  return renamed(inner:check_chain(chain, conn, ctx))
end

function Strict:__call(conn, ctx)
  return renamed(inner(conn, ctx))
end

function Strict:__tostring()
  local names = {}
  for _, r in ipairs(rules) do names[#names + 1] = r.name end
  return "tls.policy.strict (the default rules, then " .. concat(names, ", ") .. ")"
end

strict.policy = setmetatable({}, Strict)

return strict
