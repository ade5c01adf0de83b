-- tls.sni: which keypair the server side of a connection presented.
--
-- libtls picks a keypair by the client's server name (SNI) but never says
-- which one. conn:keypair() answers by applying libtls's own rule to the
-- certificates of the config the connection was accepted with:
--   * keypair 1 (the top-level cert/key, else keypairs[1]) is the default;
--   * with a server name, the other keypairs are tried in order, and the
--     first whose certificate matches the name is used;
--   * a certificate matches when one of its subjectAltName DNS names equals
--     the name (case-insensitively) or is a wildcard "*.rest" where `rest`
--     has at least two labels and equals the name after its first label; its
--     CN is used the same way only when it has no DNS or IP subjectAltName.
-- The default keypair is not tried against the name: a name that no other
-- keypair matches gets it either way.
-- (LibreTLS 3.7 tls_server.c tls_servername_cb, tls_verify.c tls_check_name.)

local x509 = require "tls.x509"
local hostname = require "tls.hostname"

local sni = {}

-- libtls matches the SNI name as the client sent it (tls.hostname).
local match_name = hostname.matches
sni.match_name = match_name

-- The names libtls would match against, from one keypair's certificate.
local function names_of(pem)
  local cert, err = x509.parse(pem)
  if not cert then return nil, err end
  local dns, from_san = {}, false
  local san = cert.san
  if san and (#san.dns > 0 or #san.ip > 0) then
    from_san = true
    for i, n in ipairs(san.dns) do dns[i] = n end
  else
    for _, atv in ipairs(cert.subject or {}) do
      if atv.type == "CN" then dns[#dns + 1] = atv.value end
    end
  end
  return {
    names = dns, from_san = from_san, subject = cert.subject_string,
    fingerprint = cert.fingerprint_sha256,
  }
end

-- Parsed keypairs of a config, parsed once per config.
local parsed_of = setmetatable({}, { __mode = "k" })
local function keypairs_of(cfg)
  local parsed = parsed_of[cfg]
  if not parsed then
    parsed = {}
    for i, pem in ipairs(cfg:keypair_certs()) do
      parsed[i] = names_of(pem) or { names = {}, subject = "?" }
    end
    parsed_of[cfg] = parsed
  end
  return parsed
end

-- sni.choose(cfg, servername) -> index of the keypair libtls uses.
function sni.choose(cfg, servername)
  local kps = keypairs_of(cfg)
  if type(servername) == "string" and servername ~= "" then
    for i = 2, #kps do
      for _, n in ipairs(kps[i].names) do
        if match_name(n, servername) then return i, kps[i] end
      end
    end
  end
  return 1, kps[1]
end

-- conn:keypair() -> index, {index, default, names, subject, fingerprint,
-- servername} for a server-side connection after its handshake; nil and a
-- message for a client connection or before the handshake.
function sni.keypair(conn)
  if conn:mode() ~= "server" then return nil, "keypair: not a server-side connection" end
  local ok, info = pcall(conn.info, conn)
  if not ok or not info or not info.version then
    return nil, "keypair: the handshake is not done"
  end
  local index, kp = sni.choose(conn:config(), info.servername)
  local names = {}
  for i, n in ipairs(kp.names) do names[i] = n end
  return index, {
    index = index, default = index == 1, names = names, subject = kp.subject,
    fingerprint = kp.fingerprint, servername = info.servername,
  }
end

return sni
