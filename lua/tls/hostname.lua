-- tls.hostname: the one host-name matcher of lua-tls, libtls's own rule.
--
-- Both the certificate policy (a client checking the server's SAN) and
-- conn:keypair() (which keypair a server chose by SNI) must agree with what
-- libtls decided, so both use this file:
--   * matches(cert_name, name): libtls's tls_match_name. Exact match,
--     case-insensitively, or a wildcard that is the whole left-most label
--     over at least two more labels ("*.example.com" covers
--     "www.example.com"; never "*.com", "f*.example.com", "example.com" or
--     "a.b.example.com"). Names are compared as given: no dot is stripped.
--   * client_name(servername): the name a libtls client sends and matches
--     with: one trailing dot removed (RFC 6066 section 3: SNI carries no
--     root label). A server matches the SNI name exactly as received, so
--     "a.example.com." sent by another client matches no "*.example.com".
-- (LibreSSL tls_verify.c tls_match_name, tls_client.c tls_connect_common,
-- tls_server.c tls_servername_cb.)

local hostname = {}

local lower, find, sub = string.lower, string.find, string.sub

function hostname.matches(cert_name, name)
  if type(cert_name) ~= "string" or type(name) ~= "string" then return false end
  cert_name, name = lower(cert_name), lower(name)
  if cert_name == name then return cert_name ~= "" end
  if sub(cert_name, 1, 1) ~= "*" then return false end
  local cert_domain = sub(cert_name, 2)
  -- reject "*", "*foo", "*..", "*.bar" and "*.bar.."
  if sub(cert_domain, 1, 1) ~= "." or sub(cert_domain, 2, 2) == "." then return false end
  local next_dot = find(cert_domain, ".", 2, true)
  if not next_dot or sub(cert_domain, next_dot + 1, next_dot + 1) == "." then return false end
  -- no wildcard match for a name without a host part or without a domain
  if sub(name, 1, 1) == "." then return false end
  local dot = find(name, ".", 1, true)
  if not dot or dot == #name then return false end
  return cert_domain == sub(name, dot)
end

function hostname.client_name(servername)
  if type(servername) ~= "string" then return servername end
  return (servername:gsub("%.$", ""))
end

return hostname
