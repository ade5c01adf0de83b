-- X.509 certificates (RFC 5280) as plain Lua tables.
--
-- The parsing is Lua, so certificate policy (pins, key sizes, name checks) can
-- read any field; base64 and SHA-256 come from the C core (libcrypto). This
-- module only reads certificates: it does not verify signatures or chains
-- (libtls does, and tls.policy checks links through core.x509_issued).
--
-- Every function takes untrusted input and answers `nil, message` for anything
-- malformed; no input makes it raise. Extensions it decodes into fields are
-- checked strictly (a damaged subjectAltName is an error, not an empty list),
-- because a policy that silently saw "no SAN" could fall back to weaker checks.
--
-- A certificate table has:
--   der, tbs_der, signature      raw bytes
--   version                      1..3
--   serial                       lowercase hex of the magnitude, as openssl -serial
--   subject, issuer              ordered lists of {type = "CN"|...|dotted OID, value = UTF-8}
--   subject_string, issuer_string  "CN=a, O=b + OU=c": certificate order, RFC 4514
--                                escaping; equals openssl -nameopt
--                                esc_2253,esc_ctrl,utf8,sep_comma_plus_space
--   not_before, not_after        seconds since the epoch (UTC)
--   public_key                   {type, oid, bits, curve (ec), exponent (rsa)}
--   signature_algorithm          openssl's name, or the dotted OID
--   signature_hash (or nil)      its digest: "md5", "sha1", "sha256", ... (RSA-PSS:
--                                from its parameters; nil for Ed25519/Ed448 and unknowns)
--   fingerprint_sha256           "AB:CD:..." as openssl -fingerprint -sha256
--   spki_sha256                  base64 SHA-256 of the SubjectPublicKeyInfo (curl pin)
--   spki_der                     the DER SubjectPublicKeyInfo
--   (the two sha256 fields are computed on first read: see lazy_hashes)
--   extensions                   every extension: {oid, name, critical, value (DER)}
--   unknown_extensions           those not decoded into a field below
--   san (or nil)                 {dns = {}, ip = {}, email = {}, uri = {}}
--   basic_constraints (or nil)   {ca = bool, path_len = n or nil}
--   key_usage, extended_key_usage (or nil)  list of names that is also a set
--   subject_key_id, authority_key_id (or nil)  lowercase hex

local asn1 = require "tls.asn1"
local sha256 = require "tls.sha256"
local lazy_hashes  -- metatable for parsed certificates, defined below
local base64 = require "tls.base64"

local x509 = {}

local sbyte, sformat, concat, floor = string.byte, string.format, table.concat, math.floor
local read, children, is, value, der = asn1.read, asn1.children, asn1.is, asn1.value, asn1.der
local SEQUENCE, SET, OID = asn1.SEQUENCE, asn1.SET, asn1.OID

-- Short names, as openssl prints them, for attribute types in names.
local attribute_names = {
  ["2.5.4.3"] = "CN", ["2.5.4.4"] = "SN", ["2.5.4.5"] = "serialNumber",
  ["2.5.4.6"] = "C", ["2.5.4.7"] = "L", ["2.5.4.8"] = "ST", ["2.5.4.9"] = "street",
  ["2.5.4.10"] = "O", ["2.5.4.11"] = "OU", ["2.5.4.12"] = "title",
  ["2.5.4.13"] = "description", ["2.5.4.15"] = "businessCategory",
  ["2.5.4.17"] = "postalCode", ["2.5.4.41"] = "name", ["2.5.4.42"] = "GN",
  ["2.5.4.43"] = "initials", ["2.5.4.44"] = "generationQualifier",
  ["2.5.4.46"] = "dnQualifier", ["2.5.4.65"] = "pseudonym",
  ["2.5.4.97"] = "organizationIdentifier",
  ["1.2.840.113549.1.9.1"] = "emailAddress",
  ["0.9.2342.19200300.100.1.25"] = "DC", ["0.9.2342.19200300.100.1.1"] = "UID",
  ["1.3.6.1.4.1.311.60.2.1.1"] = "jurisdictionL",
  ["1.3.6.1.4.1.311.60.2.1.2"] = "jurisdictionST",
  ["1.3.6.1.4.1.311.60.2.1.3"] = "jurisdictionC",
}

-- Signature algorithms, named as openssl names them.
local signature_names = {
  ["1.2.840.113549.1.1.2"] = "md2WithRSAEncryption",
  ["1.2.840.113549.1.1.4"] = "md5WithRSAEncryption",
  ["1.2.840.113549.1.1.5"] = "sha1WithRSAEncryption",
  ["1.2.840.113549.1.1.10"] = "rsassaPss",
  ["1.2.840.113549.1.1.11"] = "sha256WithRSAEncryption",
  ["1.2.840.113549.1.1.12"] = "sha384WithRSAEncryption",
  ["1.2.840.113549.1.1.13"] = "sha512WithRSAEncryption",
  ["1.2.840.113549.1.1.14"] = "sha224WithRSAEncryption",
  ["1.2.840.10045.4.1"] = "ecdsa-with-SHA1",
  ["1.2.840.10045.4.3.1"] = "ecdsa-with-SHA224",
  ["1.2.840.10045.4.3.2"] = "ecdsa-with-SHA256",
  ["1.2.840.10045.4.3.3"] = "ecdsa-with-SHA384",
  ["1.2.840.10045.4.3.4"] = "ecdsa-with-SHA512",
  ["1.2.840.10040.4.3"] = "dsaWithSHA1",
  ["2.16.840.1.101.3.4.3.1"] = "dsa_with_SHA224",
  ["2.16.840.1.101.3.4.3.2"] = "dsa_with_SHA256",
  ["1.3.101.112"] = "ED25519",
  ["1.3.101.113"] = "ED448",
}

-- The digest each signature algorithm signs with (Ed25519/Ed448 have none apart).
local signature_hashes = {
  md2WithRSAEncryption = "md2", md5WithRSAEncryption = "md5",
  sha1WithRSAEncryption = "sha1", ["ecdsa-with-SHA1"] = "sha1", dsaWithSHA1 = "sha1",
  sha224WithRSAEncryption = "sha224", sha256WithRSAEncryption = "sha256",
  sha384WithRSAEncryption = "sha384", sha512WithRSAEncryption = "sha512",
  ["ecdsa-with-SHA224"] = "sha224", ["ecdsa-with-SHA256"] = "sha256",
  ["ecdsa-with-SHA384"] = "sha384", ["ecdsa-with-SHA512"] = "sha512",
  dsa_with_SHA224 = "sha224", dsa_with_SHA256 = "sha256",
  ["1.2.840.113549.1.1.3"] = "md4", ["1.3.14.3.2.3"] = "md5", ["1.3.14.3.2.29"] = "sha1",
}

local hash_oids = {
  ["1.3.14.3.2.26"] = "sha1", ["2.16.840.1.101.3.4.2.4"] = "sha224",
  ["2.16.840.1.101.3.4.2.1"] = "sha256", ["2.16.840.1.101.3.4.2.2"] = "sha384",
  ["2.16.840.1.101.3.4.2.3"] = "sha512", ["1.2.840.113549.2.5"] = "md5",
}

-- RSASSA-PSS-params (RFC 4055): hashAlgorithm [0] DEFAULT sha1. Returns the
-- digest's name, the OID when it has no name, or nil when malformed.
local function pss_hash(params)
  if params == nil then return "sha1" end
  if not is(params, SEQUENCE) then return nil end
  local f = children(params)
  if not f then return nil end
  local first = f[1]
  if not first or first.class ~= asn1.CONTEXT or first.tag ~= 0 then return "sha1" end
  local inner = children(first)
  if not inner or #inner ~= 1 or not is(inner[1], SEQUENCE) then return nil end
  local alg = children(inner[1])
  if not alg or not alg[1] or not is(alg[1], OID) then return nil end
  local oid = asn1.oid(alg[1])
  return oid and (hash_oids[oid] or oid)
end

-- Public key algorithms: OID -> type.
local key_types = {
  ["1.2.840.113549.1.1.1"] = "rsa",
  ["1.2.840.113549.1.1.10"] = "rsa-pss",
  ["1.2.840.10045.2.1"] = "ec",
  ["1.2.840.10040.4.1"] = "dsa",
  ["1.3.101.112"] = "ed25519",
  ["1.3.101.113"] = "ed448",
  ["1.3.101.110"] = "x25519",
  ["1.3.101.111"] = "x448",
}

-- Sizes for key types whose size is fixed; these are openssl's EVP_PKEY_get_bits values.
local fixed_bits = { ed25519 = 253, ed448 = 456, x25519 = 253, x448 = 448 }

-- Named curves: OID -> name, bits.
local curves = {
  ["1.2.840.10045.3.1.7"] = { "P-256", 256 },
  ["1.3.132.0.34"] = { "P-384", 384 },
  ["1.3.132.0.35"] = { "P-521", 521 },
  ["1.2.840.10045.3.1.1"] = { "P-192", 192 },
  ["1.3.132.0.33"] = { "P-224", 224 },
  ["1.3.132.0.10"] = { "secp256k1", 256 },
  ["1.3.36.3.3.2.8.1.1.7"] = { "brainpoolP256r1", 256 },
  ["1.3.36.3.3.2.8.1.1.11"] = { "brainpoolP384r1", 384 },
  ["1.3.36.3.3.2.8.1.1.13"] = { "brainpoolP512r1", 512 },
}

-- Extensions: OID -> openssl's short name.
local extension_names = {
  ["2.5.29.9"] = "subjectDirectoryAttributes",
  ["2.5.29.14"] = "subjectKeyIdentifier",
  ["2.5.29.15"] = "keyUsage",
  ["2.5.29.16"] = "privateKeyUsagePeriod",
  ["2.5.29.17"] = "subjectAltName",
  ["2.5.29.18"] = "issuerAltName",
  ["2.5.29.19"] = "basicConstraints",
  ["2.5.29.30"] = "nameConstraints",
  ["2.5.29.31"] = "crlDistributionPoints",
  ["2.5.29.32"] = "certificatePolicies",
  ["2.5.29.33"] = "policyMappings",
  ["2.5.29.35"] = "authorityKeyIdentifier",
  ["2.5.29.36"] = "policyConstraints",
  ["2.5.29.37"] = "extendedKeyUsage",
  ["2.5.29.46"] = "freshestCRL",
  ["2.5.29.54"] = "inhibitAnyPolicy",
  ["1.3.6.1.5.5.7.1.1"] = "authorityInfoAccess",
  ["1.3.6.1.5.5.7.1.11"] = "subjectInfoAccess",
  ["1.3.6.1.5.5.7.1.24"] = "tlsfeature",
  ["1.3.6.1.4.1.11129.2.4.2"] = "ct_precert_scts",
  ["1.3.6.1.4.1.11129.2.4.3"] = "ct_precert_poison",
  ["2.16.840.1.113730.1.1"] = "nsCertType",
  ["2.16.840.1.113730.1.13"] = "nsComment",
}

local key_usage_bits = {
  "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment",
  "keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly",
}

local eku_names = {
  ["1.3.6.1.5.5.7.3.1"] = "serverAuth",
  ["1.3.6.1.5.5.7.3.2"] = "clientAuth",
  ["1.3.6.1.5.5.7.3.3"] = "codeSigning",
  ["1.3.6.1.5.5.7.3.4"] = "emailProtection",
  ["1.3.6.1.5.5.7.3.5"] = "ipsecEndSystem",
  ["1.3.6.1.5.5.7.3.6"] = "ipsecTunnel",
  ["1.3.6.1.5.5.7.3.7"] = "ipsecUser",
  ["1.3.6.1.5.5.7.3.8"] = "timeStamping",
  ["1.3.6.1.5.5.7.3.9"] = "OCSPSigning",
  ["1.3.6.1.5.5.7.3.17"] = "ipsecIKE",
  ["2.5.29.37.0"] = "anyExtendedKeyUsage",
  ["1.3.6.1.4.1.311.10.3.3"] = "msSGC",
  ["2.16.840.1.113730.4.1"] = "nsSGC",
}

-- Reads exactly the children of `node`, checking each against `want` (a list
-- of universal tag numbers). Returns the list of children or nil, message.
local function expect(node, what, ...)
  if not is(node, SEQUENCE) then
    return nil, what .. " is not a SEQUENCE"
  end
  local kids, err = children(node)
  if not kids then return nil, what .. ": " .. err end
  local want = { ... }
  if #kids < #want then
    return nil, what .. " has too few fields"
  end
  for i = 1, #want do
    if want[i] and not is(kids[i], want[i]) then
      return nil, sformat("%s field %d has the wrong type", what, i)
    end
  end
  return kids
end

-- For a 32-byte digest: "AB:CD:...", as openssl -fingerprint prints it.
local fingerprint_format = ("%02X:"):rep(31) .. "%02X"
local function upper_hex_colons(digest)
  return sformat(fingerprint_format, sbyte(digest, 1, 32))
end

-- RFC 4514 escaping, as openssl's -nameopt esc_2253,esc_ctrl does it.
local function escape_value(v)
  if not v:find('[,+"\\<>;%c\127]') and not v:find("^[# ]") and not v:find(" $") then
    return v
  end
  v = v:gsub('[,+"\\<>;]', "\\%0"):gsub("[%z\1-\31\127]", function(c)
    return sformat("\\%02X", sbyte(c))
  end)
  v = v:gsub("^([# ])", "\\%1"):gsub(" $", "\\ ")
  return v
end

-- Name ::= SEQUENCE OF SET OF SEQUENCE { type OID, value ANY }.
-- Returns the list of {type, value} and the one-line string, or nil, message.
local function parse_name(node, what)
  if not is(node, SEQUENCE) then return nil, what .. " is not a SEQUENCE" end
  local rdns, err = children(node)
  if not rdns then return nil, what .. ": " .. err end
  local list, parts = {}, {}
  for _, rdn in ipairs(rdns) do
    if not is(rdn, SET) then return nil, what .. ": RDN is not a SET" end
    local atvs, err2 = children(rdn)
    if not atvs then return nil, what .. ": " .. err2 end
    if #atvs == 0 then return nil, what .. ": empty RDN" end
    local rdn_parts = {}
    for _, atv in ipairs(atvs) do
      local f, err3 = expect(atv, what .. " attribute", OID)
      if not f then return nil, err3 end
      if #f ~= 2 then return nil, what .. ": attribute must have a type and a value" end
      local oid, err4 = asn1.oid(f[1])
      if not oid then return nil, what .. ": " .. err4 end
      local text = asn1.string(f[2])
      local shown
      if text then
        shown = escape_value(text)
      else
        -- Not a string type: RFC 4514 says show the DER as '#' and hex.
        text = "#" .. asn1.hex(der(f[2]))
        shown = text
      end
      local name = attribute_names[oid] or oid
      list[#list + 1] = { type = name, value = text }
      rdn_parts[#rdn_parts + 1] = name .. "=" .. shown
    end
    parts[#parts + 1] = concat(rdn_parts, " + ")
  end
  return list, concat(parts, ", ")
end

-- AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }.
local function parse_algorithm(node, what)
  local f, err = expect(node, what, OID)
  if not f then return nil, err end
  if #f > 2 then return nil, what .. " has too many fields" end
  local oid, err2 = asn1.oid(f[1])
  if not oid then return nil, what .. ": " .. err2 end
  return oid, f[2]
end

-- Bit length of a big-endian unsigned magnitude (leading zero bytes ignored).
local function bit_length(bytes)
  local i = 1
  while i <= #bytes and sbyte(bytes, i) == 0 do i = i + 1 end
  if i > #bytes then return 0 end
  local top, bits = sbyte(bytes, i), 0
  while top > 0 do top, bits = floor(top / 2), bits + 1 end
  return (#bytes - i) * 8 + bits
end

local function parse_public_key(node)
  local f, err = expect(node, "subjectPublicKeyInfo", SEQUENCE, asn1.BIT_STRING)
  if not f then return nil, err end
  if #f ~= 2 then return nil, "subjectPublicKeyInfo has extra fields" end
  local oid, params = parse_algorithm(f[1], "public key algorithm")
  if not oid then return nil, params end
  local bits, unused = asn1.bit_string(f[2])
  if not bits then return nil, "public key: " .. unused end
  local key = { type = key_types[oid] or oid, oid = oid }
  if key.type == "rsa" or key.type == "rsa-pss" then
    if unused ~= 0 then return nil, "RSA public key has unused bits" end
    local inner, nxt = read(bits, 1)
    if not inner or nxt ~= #bits + 1 then
      return nil, "RSA public key is not a single SEQUENCE"
    end
    local k, err2 = expect(inner, "RSA public key", asn1.INTEGER, asn1.INTEGER)
    if not k then return nil, err2 end
    key.bits = bit_length(value(k[1]))
    key.exponent = asn1.integer(k[2])
  elseif key.type == "ec" then
    if not params or not is(params, OID) then
      -- RFC 5480 allows only named curves; explicit parameters were the
      -- vector for CVE-2020-0601, so they are refused rather than described.
      return nil, "EC public key with explicit curve parameters (RFC 5480 requires a named curve)"
    end
    local curve, err2 = asn1.oid(params)
    if not curve then return nil, "EC curve: " .. err2 end
    local known = curves[curve]
    if known then
      key.curve, key.bits = known[1], known[2]
    else
      -- Unknown curve: an uncompressed point is 04 || X || Y.
      key.curve, key.bits = curve, floor((#bits - 1) / 2) * 8
    end
  elseif key.type == "dsa" then
    if params and is(params, SEQUENCE) then
      local p = children(params)
      if p and p[1] and is(p[1], asn1.INTEGER) then
        key.bits = bit_length(value(p[1]))
      end
    end
  else
    key.bits = fixed_bits[key.type]
  end
  return key
end

local function ipv6_text(b)
  local groups = {}
  for i = 1, 16, 2 do
    groups[#groups + 1] = sbyte(b, i) * 256 + sbyte(b, i + 1)
  end
  -- RFC 5952: drop the longest run (the first if tied) of two or more zero groups.
  local best, best_len, run, run_len = nil, 1, nil, 0
  for i = 1, 8 do
    if groups[i] == 0 then
      if run_len == 0 then run = i end
      run_len = run_len + 1
      if run_len > best_len then best, best_len = run, run_len end
    else
      run_len = 0
    end
  end
  -- RFC 5952 section 5: IPv4-mapped addresses keep the dotted quad.
  if best == 1 and best_len == 5 and groups[6] == 0xffff then
    return sformat("::ffff:%d.%d.%d.%d", sbyte(b, 13, 16))
  end
  local t = {}
  for i = 1, 8 do t[i] = sformat("%x", groups[i]) end
  if best then
    local head = concat(t, ":", 1, best - 1)
    local tail = best + best_len <= 8 and concat(t, ":", best + best_len, 8) or ""
    return head .. "::" .. tail
  end
  return concat(t, ":")
end
x509.ipv6_text = ipv6_text

-- GeneralNames: only the four kinds a TLS policy uses are kept.
local function parse_san(v)
  local seq, nxt = read(v, 1)
  if not seq or nxt ~= #v + 1 or not is(seq, SEQUENCE) then
    return nil, "subjectAltName is not a single SEQUENCE"
  end
  local names, err = children(seq)
  if not names then return nil, "subjectAltName: " .. err end
  local san = { dns = {}, ip = {}, email = {}, uri = {} }
  for _, gn in ipairs(names) do
    if gn.class == asn1.CONTEXT then
      local t = gn.tag
      -- names and addresses are primitive in DER (a BER reader would join the parts)
      if gn.constructed and (t == 1 or t == 2 or t == 6 or t == 7) then
        return nil, "subjectAltName: constructed string"
      end
      if t == 1 or t == 2 or t == 6 then
        local s = value(gn)
        if s:find("[\128-\255]") then
          return nil, "subjectAltName: non-ASCII name"
        end
        local list = t == 1 and san.email or t == 2 and san.dns or san.uri
        list[#list + 1] = s
      elseif t == 7 then
        local b = value(gn)
        if #b == 4 then
          san.ip[#san.ip + 1] = sformat("%d.%d.%d.%d", sbyte(b, 1, 4))
        elseif #b == 16 then
          san.ip[#san.ip + 1] = ipv6_text(b)
        else
          return nil, sformat("subjectAltName: IP address of %d bytes", #b)
        end
      end
    end
  end
  return san
end

local function parse_basic_constraints(v)
  local seq, nxt = read(v, 1)
  if not seq or nxt ~= #v + 1 or not is(seq, SEQUENCE) then
    return nil, "basicConstraints is not a single SEQUENCE"
  end
  local f, err = children(seq)
  if not f then return nil, "basicConstraints: " .. err end
  local bc, i = { ca = false }, 1
  if f[i] and is(f[i], asn1.BOOLEAN) then
    local ca, err2 = asn1.boolean(f[i])
    if ca == nil then return nil, "basicConstraints: " .. err2 end
    bc.ca, i = ca, i + 1
  end
  if f[i] and is(f[i], asn1.INTEGER) then
    local n, err2 = asn1.integer(f[i])
    if not n or n < 0 then return nil, "basicConstraints: bad pathLenConstraint" .. (err2 and ": " .. err2 or "") end
    bc.path_len, i = n, i + 1
  end
  if f[i] then return nil, "basicConstraints has unexpected fields" end
  return bc
end

-- Returns a list of names that is also a set: ku[1] == "keyCertSign" and ku.keyCertSign == true.
local function parse_key_usage(v)
  local node, nxt = read(v, 1)
  if not node or nxt ~= #v + 1 or not is(node, asn1.BIT_STRING) then
    return nil, "keyUsage is not a single BIT STRING"
  end
  local bits, unused = asn1.bit_string(node)
  if not bits then return nil, "keyUsage: " .. unused end
  local ku = {}
  for i, name in ipairs(key_usage_bits) do
    local byte = sbyte(bits, floor((i - 1) / 8) + 1)
    -- bit (i - 1) % 8 from the left of this byte is set
    if byte and floor(byte / 2 ^ (7 - (i - 1) % 8)) % 2 == 1 then
      ku[#ku + 1], ku[name] = name, true
    end
  end
  return ku
end

-- Returns a list of names (or dotted OIDs) that is also a set, like key usage.
local function parse_eku(v)
  local seq, nxt = read(v, 1)
  if not seq or nxt ~= #v + 1 or not is(seq, SEQUENCE) then
    return nil, "extendedKeyUsage is not a single SEQUENCE"
  end
  local f, err = children(seq)
  if not f then return nil, "extendedKeyUsage: " .. err end
  local eku = {}
  for _, n in ipairs(f) do
    if not is(n, OID) then return nil, "extendedKeyUsage: entry is not an OID" end
    local oid, err2 = asn1.oid(n)
    if not oid then return nil, "extendedKeyUsage: " .. err2 end
    local name = eku_names[oid] or oid
    eku[#eku + 1], eku[name] = name, true
  end
  return eku
end

local function parse_ski(v)
  local node, nxt = read(v, 1)
  if not node or nxt ~= #v + 1 or not is(node, asn1.OCTET_STRING) then
    return nil, "subjectKeyIdentifier is not a single OCTET STRING"
  end
  return asn1.hex(value(node))
end

-- Only keyIdentifier [0] is kept; issuer/serial forms are rare and unused here.
local function parse_aki(v)
  local seq, nxt = read(v, 1)
  if not seq or nxt ~= #v + 1 or not is(seq, SEQUENCE) then
    return nil, "authorityKeyIdentifier is not a single SEQUENCE"
  end
  local f, err = children(seq)
  if not f then return nil, "authorityKeyIdentifier: " .. err end
  for _, n in ipairs(f) do
    if n.class == asn1.CONTEXT and n.tag == 0 then return asn1.hex(value(n)) end
  end
  return false
end

-- Extensions decoded into fields: OID -> result field, decoder.
local decoders = {
  ["2.5.29.17"] = { "san", parse_san },
  ["2.5.29.19"] = { "basic_constraints", parse_basic_constraints },
  ["2.5.29.15"] = { "key_usage", parse_key_usage },
  ["2.5.29.37"] = { "extended_key_usage", parse_eku },
  ["2.5.29.14"] = { "subject_key_id", parse_ski },
  ["2.5.29.35"] = { "authority_key_id", parse_aki },
}

local function parse_extensions(node, cert)
  local outer = children(node)
  if not outer or #outer ~= 1 then return nil, "extensions: [3] must hold one SEQUENCE" end
  if not is(outer[1], SEQUENCE) then return nil, "extensions are not a SEQUENCE" end
  local exts, err = children(outer[1])
  if not exts then return nil, "extensions: " .. err end
  if #exts == 0 then return nil, "extensions: empty list" end
  local seen = {}
  for _, ext in ipairs(exts) do
    local f, err2 = expect(ext, "extension", OID)
    if not f then return nil, err2 end
    local oid, err3 = asn1.oid(f[1])
    if not oid then return nil, "extension: " .. err3 end
    if seen[oid] then return nil, "duplicate extension " .. oid end
    seen[oid] = true
    local critical, i = false, 2
    if f[i] and is(f[i], asn1.BOOLEAN) then
      critical = asn1.boolean(f[i])
      if critical == nil then return nil, "extension " .. oid .. ": bad critical flag" end
      i = i + 1
    end
    if not (f[i] and is(f[i], asn1.OCTET_STRING)) or f[i + 1] then
      return nil, "extension " .. oid .. ": expected a single OCTET STRING value"
    end
    -- value: the extnValue bytes, kept for every extension (decoded or not)
    -- so stricter checks need no second parse of the certificate.
    local info = { oid = oid, name = extension_names[oid] or oid, critical = critical, value = value(f[i]) }
    cert.extensions[#cert.extensions + 1] = info
    local d = decoders[oid]
    if d then
      local result, err4 = d[2](value(f[i]))
      if result == nil then return nil, err4 end
      cert[d[1]] = result or nil
    else
      cert.unknown_extensions[#cert.unknown_extensions + 1] = info
    end
  end
  return true
end

local function parse_der(s)
  local root, nxt = read(s, 1)
  if not root then return nil, nxt end
  if nxt ~= #s + 1 then
    return nil, sformat("%d bytes of trailing data after the certificate", #s - nxt + 1)
  end
  local top, err = expect(root, "Certificate", SEQUENCE, SEQUENCE, asn1.BIT_STRING)
  if not top then return nil, err end
  if #top ~= 3 then return nil, "Certificate must have exactly three fields" end
  local tbs, err2 = children(top[1])
  if not tbs then return nil, "tbsCertificate: " .. err2 end

  local cert = { der = s, extensions = {}, unknown_extensions = {} }
  local i = 1
  -- version [0] EXPLICIT INTEGER DEFAULT v1
  if tbs[1] and tbs[1].class == asn1.CONTEXT and tbs[1].tag == 0 then
    local v = children(tbs[1])
    if not v or #v ~= 1 or not is(v[1], asn1.INTEGER) then return nil, "malformed version" end
    local n = asn1.integer(v[1])
    if not n or n < 0 or n > 2 then return nil, "unsupported version" end
    cert.version, i = n + 1, 2
  else
    cert.version = 1
  end
  local serial, sig, issuer, validity, subject, spki =
    tbs[i], tbs[i + 1], tbs[i + 2], tbs[i + 3], tbs[i + 4], tbs[i + 5]
  if not spki then return nil, "tbsCertificate has too few fields" end

  if not is(serial, asn1.INTEGER) then return nil, "serial number is not an INTEGER" end
  local e
  cert.serial, e = asn1.integer_hex(serial)
  if not cert.serial then return nil, "serial number: " .. e end

  local sig_oid, e2 = parse_algorithm(sig, "tbsCertificate signature")
  if not sig_oid then return nil, e2 end
  local outer_oid, e3 = parse_algorithm(top[2], "signatureAlgorithm")
  if not outer_oid then return nil, e3 end
  cert.signature_algorithm = signature_names[outer_oid] or outer_oid
  if outer_oid == "1.2.840.113549.1.1.10" then
    cert.signature_hash = pss_hash(e3)
  else
    cert.signature_hash = signature_hashes[cert.signature_algorithm]
  end

  cert.issuer, cert.issuer_string = parse_name(issuer, "issuer")
  if not cert.issuer then return nil, cert.issuer_string end
  cert.subject, cert.subject_string = parse_name(subject, "subject")
  if not cert.subject then return nil, cert.subject_string end

  local times, e4 = expect(validity, "validity")
  if not times then return nil, e4 end
  if #times ~= 2 then return nil, "validity must have two times" end
  cert.not_before, e4 = asn1.time(times[1])
  if not cert.not_before then return nil, "notBefore: " .. e4 end
  cert.not_after, e4 = asn1.time(times[2])
  if not cert.not_after then return nil, "notAfter: " .. e4 end

  local key, e5 = parse_public_key(spki)
  if not key then return nil, e5 end
  cert.public_key = key
  local spki_der = der(spki)

  -- issuerUniqueID [1], subjectUniqueID [2], extensions [3], in that order.
  local last_tag = 0
  for j = i + 6, #tbs do
    local n = tbs[j]
    if n.class ~= asn1.CONTEXT or n.tag <= last_tag or n.tag > 3 then
      return nil, "unexpected field in tbsCertificate"
    end
    last_tag = n.tag
    if n.tag == 3 then
      if cert.version ~= 3 then return nil, "extensions in a v" .. cert.version .. " certificate" end
      local ok, e6 = parse_extensions(n, cert)
      if not ok then return nil, e6 end
    end
  end

  local sig_bits, e7 = asn1.bit_string(top[3])
  if not sig_bits then return nil, "signature: " .. e7 end
  cert.signature = sig_bits
  cert.tbs_der = der(top[1])

  cert.spki_der = spki_der
  return setmetatable(cert, lazy_hashes)
end

--- The two SHA-256 fields are computed on first read and then kept: hashing
-- is most of the cost of parsing a whole trust bundle, and most callers
-- never read them. (They don't show in pairs() until read.)
local lazy = {
  fingerprint_sha256 = function(c) return upper_hex_colons(sha256.digest(c.der)) end,
  spki_sha256 = function(c) return base64.encode(sha256.digest(c.spki_der)) end,
}
lazy_hashes = {
  __index = function(c, k)
    local make = lazy[k]
    if not make then return nil end
    local v = make(c)
    rawset(c, k, v)
    return v
  end,
}

--- Splits PEM text into its blocks, in order.
-- Returns a list of {label = "CERTIFICATE", der = <bytes>}, or nil, message
-- for an unterminated block or bad base64. Text between blocks is ignored.
function x509.pem_blocks(text)
  if type(text) ~= "string" then
    return nil, "x509: expected a string, got " .. type(text)
  end
  local blocks, pos = {}, 1
  while true do
    local b, e, label = text:find("%-%-%-%-%-BEGIN ([%w ]-)%-%-%-%-%-", pos)
    if not b then break end
    local endmark = "-----END " .. label .. "-----"
    local eb, ee = text:find(endmark, e + 1, true)
    if not eb then
      return nil, sformat("x509: PEM block %d (%s) has no END line", #blocks + 1, label)
    end
    local body, err = base64.decode(text:sub(e + 1, eb - 1))
    if not body then
      return nil, sformat("x509: PEM block %d (%s): %s", #blocks + 1, label, err)
    end
    blocks[#blocks + 1] = { label = label, der = body }
    pos = ee + 1
  end
  return blocks
end

local function parse_one(s)
  -- A malformed certificate must never raise; the explicit checks above are
  -- meant to catch everything, and pcall keeps that promise if one is missing.
  local ok, cert, err = pcall(parse_der, s)
  if not ok then
    return nil, "x509: internal error: " .. tostring(cert)
  end
  if not cert then return nil, "x509: " .. err end
  return cert
end

--- Parses one certificate from DER bytes or PEM text (the first CERTIFICATE
-- block). Returns the certificate table, or nil and a message.
function x509.parse(input)
  if type(input) ~= "string" then
    return nil, "x509: expected a string, got " .. type(input)
  end
  if sbyte(input, 1) == 0x30 then
    return parse_one(input)
  end
  local blocks, err = x509.pem_blocks(input)
  if not blocks then return nil, err end
  for _, b in ipairs(blocks) do
    if b.label == "CERTIFICATE" then return parse_one(b.der) end
  end
  return nil, "x509: no CERTIFICATE block found"
end

--- Parses every CERTIFICATE block of PEM text, in order (other blocks are
-- skipped). Returns a list of certificate tables, or nil and a message naming
-- the first block that failed.
function x509.parse_chain(pem)
  local blocks, err = x509.pem_blocks(pem)
  if not blocks then return nil, err end
  local list = {}
  for _, b in ipairs(blocks) do
    if b.label == "CERTIFICATE" then
      local cert, err2 = parse_one(b.der)
      if not cert then
        return nil, sformat("certificate %d: %s", #list + 1, err2)
      end
      list[#list + 1] = cert
    end
  end
  if #list == 0 then return nil, "x509: no CERTIFICATE block found" end
  return list
end

return x509
