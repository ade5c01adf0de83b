-- tls.luasec.cert: LuaSec's certificate object (ssl.x509) over a certificate
-- parsed by tls.x509: pem, digest, subject, issuer, notbefore, notafter,
-- validat, serial, extensions (the subjectAltName), pubkey,
-- getsignaturename. A method LuaSec has and this does not raises, naming it.

local x509 = require "tls.x509"
local base64 = require "tls.base64"
local sha256 = require "tls.sha256"

local cert = {}
local methods = {}
local mt = { __name = "tls.luasec.cert" }

-- The attribute types tls.x509 reports by short name, with their OIDs and
-- the long names LuaSec reports.
local attributes = {
  CN = { "2.5.4.3", "commonName" }, C = { "2.5.4.6", "countryName" },
  L = { "2.5.4.7", "localityName" }, ST = { "2.5.4.8", "stateOrProvinceName" },
  O = { "2.5.4.10", "organizationName" }, OU = { "2.5.4.11", "organizationalUnitName" },
  serialNumber = { "2.5.4.5", "serialNumber" }, title = { "2.5.4.12", "title" },
  GN = { "2.5.4.42", "givenName" }, SN = { "2.5.4.4", "surname" },
  emailAddress = { "1.2.840.113549.1.9.1", "emailAddress" },
  DC = { "0.9.2342.19200300.100.1.25", "domainComponent" },
  UID = { "0.9.2342.19200300.100.1.1", "userId" },
}

local function pem_block(label, der)
  local b64 = base64.encode(der)
  local lines = { "-----BEGIN " .. label .. "-----" }
  for i = 1, #b64, 64 do lines[#lines + 1] = b64:sub(i, i + 63) end
  lines[#lines + 1] = "-----END " .. label .. "-----"
  return table.concat(lines, "\n") .. "\n"
end

local function name_list(rdns)
  local out = {}
  for i, a in ipairs(rdns) do
    local known = attributes[a.type]
    out[i] = { name = known and known[2] or a.type, oid = known and known[1] or a.type,
      value = a.value }
  end
  return out
end

-- "Nov  9 16:30:00 2026 GMT", as OpenSSL's ASN1_TIME_print (LuaSec's form).
local function asn1_time(t)
  return ("%s %2d %s"):format(os.date("!%b", t), tonumber(os.date("!%d", t)),
    os.date("!%H:%M:%S %Y GMT", t))
end

function methods:pem() return pem_block("CERTIFICATE", self.x.der) end

-- LuaSec's default digest is SHA-1; lua-tls has SHA-256 only, so that is
-- the default here, and any other name raises.
function methods:digest(alg)
  if alg ~= nil and alg ~= "sha256" then
    error("tls.luasec: cert:digest(" .. tostring(alg) .. "): only \"sha256\" is available", 2)
  end
  return sha256.hex(self.x.der)
end

function methods:subject() return name_list(self.x.subject) end
function methods:issuer() return name_list(self.x.issuer) end
function methods:notbefore() return asn1_time(self.x.not_before) end
function methods:notafter() return asn1_time(self.x.not_after) end
function methods:validat(t) return t >= self.x.not_before and t <= self.x.not_after end
function methods:serial() return (self.x.serial:upper()) end
function methods:getsignaturename() return self.x.signature_algorithm end

function methods:pubkey()
  local k = self.x.public_key
  return pem_block("PUBLIC KEY", self.x.spki_der), k.type:upper(), k.bits
end

-- Only the subjectAltName is decoded, under its OID, with LuaSec's keys.
function methods:extensions()
  local out, san = {}, self.x.san
  if san then
    out["2.5.29.17"] = { name = "X509v3 Subject Alternative Name", dNSName = san.dns,
      iPAddress = san.ip, rfc822Name = san.email, uniformResourceIdentifier = san.uri }
  end
  return out
end

mt.__index = function(_, k)
  local m = methods[k]
  if m then return m end
  error("tls.luasec: cert:" .. tostring(k) .. " is not available (see doc/migrating-from-luasec.md)", 2)
end
mt.__tostring = function(self) return "X509 certificate: " .. self.x.subject_string end

-- cert.wrap(parsed) -> LuaSec-style certificate object
function cert.wrap(parsed)
  return setmetatable({ x = parsed }, mt)
end

-- cert.chain(pem) -> list of certificate objects, leaf first
function cert.chain(pem)
  local parsed, err = x509.parse_chain(pem)
  if not parsed then return nil, err end
  local out = {}
  for i, c in ipairs(parsed) do out[i] = cert.wrap(c) end
  return out
end

-- cert.load(pem) -> certificate object | nil, message (ssl.loadcertificate)
function cert.load(pem)
  local list, err = cert.chain(pem)
  if not list then return nil, err end
  if not list[1] then return nil, "no certificate in the PEM text" end
  return list[1]
end

return cert
