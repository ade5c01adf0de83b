-- tls.x509: reading certificates in pure Lua.
--
-- Certificates are made at test time with the openssl CLI, and every field the
-- parser returns is compared with what openssl says about the same file.

local x509 = require "tls.x509"
local asn1 = require "tls.asn1"
local sha256 = require "tls.sha256"
local base64 = require "tls.base64"
local pki = require "support.pki"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = p:read("*a")
  local ok = p:close()
  return out, ok
end

local function must(cmd)
  local out, ok = sh(cmd)
  assert(ok, "command failed: " .. cmd .. "\n" .. out)
  return out
end

local readfile, writefile = pki.read, pki.write

local function mktemp()
  return (must("mktemp -d /tmp/x509_spec.XXXXXX"):gsub("%s+$", ""))
end

-- openssl prints IPv6 addresses uncompressed and uppercase; compare as numbers.
local function ip_groups(text)
  if not text:find(":") then return text end
  -- A trailing dotted quad (IPv4-mapped) is two groups.
  text = text:gsub("(%d+)%.(%d+)%.(%d+)%.(%d+)$", function(a, b, c, d)
    return ("%x:%x"):format(tonumber(a) * 256 + tonumber(b), tonumber(c) * 256 + tonumber(d))
  end)
  local head, tail = text:match("^(.-)::(.*)$")
  local groups = {}
  local function add(part)
    for g in part:gmatch("[^:]+") do groups[#groups + 1] = tonumber(g, 16) end
  end
  if head then
    add(head)
    local n = #groups
    local rest = {}
    for g in tail:gmatch("[^:]+") do rest[#rest + 1] = tonumber(g, 16) end
    for _ = 1, 8 - n - #rest do groups[#groups + 1] = 0 end
    for _, g in ipairs(rest) do groups[#groups + 1] = g end
  else
    add(text)
  end
  return table.concat(groups, ":")
end

local openssl_ext_oids = {
  ["X509v3 Subject Key Identifier"] = "2.5.29.14",
  ["X509v3 Authority Key Identifier"] = "2.5.29.35",
  ["X509v3 Subject Alternative Name"] = "2.5.29.17",
  ["X509v3 Basic Constraints"] = "2.5.29.19",
  ["X509v3 Key Usage"] = "2.5.29.15",
  ["X509v3 Extended Key Usage"] = "2.5.29.37",
}

local openssl_key_usage = {
  ["Digital Signature"] = "digitalSignature", ["Non Repudiation"] = "nonRepudiation",
  ["Key Encipherment"] = "keyEncipherment", ["Data Encipherment"] = "dataEncipherment",
  ["Key Agreement"] = "keyAgreement", ["Certificate Sign"] = "keyCertSign",
  ["CRL Sign"] = "cRLSign", ["Encipher Only"] = "encipherOnly", ["Decipher Only"] = "decipherOnly",
}

local openssl_eku = {
  ["TLS Web Server Authentication"] = "serverAuth",
  ["TLS Web Client Authentication"] = "clientAuth",
  ["Code Signing"] = "codeSigning", ["E-mail Protection"] = "emailProtection",
  ["Time Stamping"] = "timeStamping", ["OCSP Signing"] = "OCSPSigning",
}

local function split(line, sep)
  local out = {}
  for item in (line .. sep):gmatch("(.-)" .. sep) do out[#out + 1] = item end
  return out
end

-- Reads what `openssl x509 -text ...` printed (see facts_for) into a table.
local function parse_openssl_text(text)
  local f = { extensions = {}, san = { dns = {}, ip = {}, email = {}, uri = {} } }
  f.serial = text:match("serial=(%x+)")
  f.not_before_text = text:match("notBefore=([^\n]+)")
  f.not_after_text = text:match("notAfter=([^\n]+)")
  f.subject = text:match("subject=([^\n]*)")
  f.issuer = text:match("issuer=([^\n]*)")
  f.fingerprint = text:match("sha256 Fingerprint=([%x:]+)")
  f.version = tonumber(text:match("Version: (%d)"))
  f.signature_algorithm = text:match("Signature Algorithm: (%S+)")
  f.key_algorithm = text:match("Public Key Algorithm: (%S+)")
  f.bits = tonumber(text:match("Public%-Key: %((%d+) bit%)"))
  f.curve = text:match("NIST CURVE: (%S+)")
  local lines = split(text, "\n")
  local in_ext = false
  for i, line in ipairs(lines) do
    if line:match("^        X509v3 extensions:") then
      in_ext = true
    elseif in_ext and not line:match("^            ") then
      in_ext = false
    elseif in_ext then
      local name, crit = line:match("^            (%S[^:]*):( ?c?r?i?t?i?c?a?l?)$")
      if name then
        local oid = openssl_ext_oids[name] or name
        f.extensions[#f.extensions + 1] = { oid = oid, critical = crit == " critical" }
        local body = (lines[i + 1] or ""):gsub("^%s+", ""):gsub("%s+$", "")
        if oid == "2.5.29.17" then
          for _, item in ipairs(split(body, ", ")) do
            local kind, v = item:match("^([^:]+):(.*)$")
            local map = { DNS = "dns", ["IP Address"] = "ip", email = "email", URI = "uri" }
            local list = f.san[map[kind] or "other"] or {}
            list[#list + 1] = kind == "IP Address" and ip_groups(v) or v
          end
        elseif oid == "2.5.29.19" then
          f.ca = body:match("CA:(%u+)") == "TRUE"
          f.path_len = tonumber(body:match("pathlen:(%d+)"))
        elseif oid == "2.5.29.15" then
          f.key_usage = {}
          for _, item in ipairs(split(body, ", ")) do
            f.key_usage[#f.key_usage + 1] = openssl_key_usage[item] or item
          end
        elseif oid == "2.5.29.37" then
          f.eku = {}
          for _, item in ipairs(split(body, ", ")) do
            f.eku[#f.eku + 1] = openssl_eku[item] or item
          end
        end
      end
    end
  end
  return f
end

-- Asks openssl about each certificate file: one `openssl x509` per file (two
-- at a time), the SPKI hash from the PEM public key it prints, and all dates
-- converted to epoch seconds by one `date` call. Returns a list of fact tables.
local function facts_for(paths)
  local dir = mktemp()
  local list = {}
  for i, p in ipairs(paths) do list[#list + 1] = dir .. "/" .. i .. " " .. p end
  writefile(dir .. "/jobs", table.concat(list, "\n") .. "\n")
  must("xargs -P 2 -n 2 sh -c '" ..
    "openssl x509 -in \"$1\" -noout -serial -startdate -enddate -dateopt iso_8601 " ..
    "-subject -issuer -nameopt esc_2253,esc_ctrl,utf8,sep_comma_plus_space " ..
    "-fingerprint -sha256 -text -pubkey > \"$0.txt\" 2>&1; " ..
    "sed -n \"/-BEGIN PUBLIC KEY-/,/-END PUBLIC KEY-/p\" \"$0.txt\" | grep -v -- ----- " ..
    "| base64 -d | sha256sum | cut -c1-64 > \"$0.spki\"' < " .. dir .. "/jobs")
  local facts, dates = {}, {}
  for i = 1, #paths do
    local f = parse_openssl_text(readfile(dir .. "/" .. i .. ".txt"))
    f.spki_hex = readfile(dir .. "/" .. i .. ".spki"):match("%x+")
    f.path = paths[i]
    facts[i] = f
    dates[#dates + 1] = f.not_before_text or "invalid"
    dates[#dates + 1] = f.not_after_text or "invalid"
  end
  writefile(dir .. "/dates", table.concat(dates, "\n") .. "\n")
  local epochs = split(must("date -u -f " .. dir .. "/dates +%s"):gsub("\n$", ""), "\n")
  for i, f in ipairs(facts) do
    f.not_before, f.not_after = tonumber(epochs[2 * i - 1]), tonumber(epochs[2 * i])
  end
  must("rm -rf " .. dir)
  return facts
end

local function spki_hex(cert)
  return asn1.hex(assert(base64.decode(cert.spki_sha256)))
end

local function ips(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = ip_groups(v) end
  return out
end

-- The checks every certificate must pass against openssl.
local function assert_matches_openssl(cert, f)
  assert.are.equal(f.serial:lower(), cert.serial)
  assert.are.equal(f.subject, cert.subject_string)
  assert.are.equal(f.issuer, cert.issuer_string)
  assert.are.equal(f.not_before, cert.not_before)
  assert.are.equal(f.not_after, cert.not_after)
  assert.are.equal(f.fingerprint, cert.fingerprint_sha256)
  assert.are.equal(f.spki_hex, spki_hex(cert))
  assert.are.equal(f.version, cert.version)
  assert.are.equal(f.signature_algorithm:lower(), cert.signature_algorithm:lower())
  local kt = cert.public_key.type
  if kt == "rsa" or kt == "ec" or kt == "dsa" then
    assert.are.equal(f.bits, cert.public_key.bits)
  end
  if f.curve then assert.are.equal(f.curve, cert.public_key.curve) end
end

-- openssl's "Public Key Algorithm" names for the key types the parser gives.
local openssl_key_types = {
  rsaEncryption = "rsa", rsassaPss = "rsa-pss", ["id-ecPublicKey"] = "ec",
  dsaEncryption = "dsa", ED25519 = "ed25519", ED448 = "ed448", X25519 = "x25519", X448 = "x448",
}

-- Key type, and what openssl prints of SAN, key usage, extended key usage
-- and basic constraints: present on one side exactly when on the other.
local function assert_extensions_match_openssl(cert, f)
  assert.is_string(f.key_algorithm, "openssl printed no Public Key Algorithm")
  assert.are.equal(openssl_key_types[f.key_algorithm] or f.key_algorithm, cert.public_key.type)
  local has_san = false
  for _, e in ipairs(f.extensions) do has_san = has_san or e.oid == "2.5.29.17" end
  if has_san then
    assert.is_table(cert.san, "subjectAltName")
    assert.are.same(f.san.dns, cert.san.dns or {})
    assert.are.same(f.san.ip, ips(cert.san.ip or {}))
    assert.are.same(f.san.email, cert.san.email or {})
    assert.are.same(f.san.uri, cert.san.uri or {})
  else
    assert.is_nil(cert.san, "subjectAltName")
  end
  if f.key_usage then
    assert.are.same(f.key_usage, { (table.unpack or unpack)((assert(cert.key_usage, "keyUsage"))) })
  else
    assert.is_nil(cert.key_usage, "keyUsage")
  end
  if f.eku then
    assert.are.same(f.eku, { (table.unpack or unpack)((assert(cert.extended_key_usage, "extendedKeyUsage"))) })
  else
    assert.is_nil(cert.extended_key_usage, "extendedKeyUsage")
  end
  if f.ca ~= nil then
    local bc = assert(cert.basic_constraints, "basicConstraints")
    assert.are.equal(f.ca, bc.ca)
    assert.are.equal(f.path_len, bc.path_len)
  end
end

local tmp

local function gen(script)
  must("cd " .. tmp .. " && { " .. script .. "\n} ")
end

describe("tls.x509", function()
  local certs = {}   -- name -> parsed
  local facts = {}   -- name -> what openssl says

  lazy_setup(function()
    tmp = mktemp()
    writefile(tmp .. "/leaf.ext", table.concat({
      "subjectAltName=DNS:www.example.com,DNS:xn--bcher-kva.example,DNS:*.example.org," ..
        "IP:192.0.2.1,IP:2001:db8::1,IP:::1,IP:2001:db8:0:0:1:0:0:1,IP:fe80:0:0:0:1::," ..
        "email:admin@example.com,URI:https://example.com/path?q=1",
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth,clientAuth,1.3.6.1.4.1.99999.1",
      "subjectKeyIdentifier=hash",
      "authorityKeyIdentifier=keyid",
    }, "\n") .. "\n")
    writefile(tmp .. "/custom.ext", table.concat({
      "1.3.6.1.4.1.99999.2=critical,ASN1:UTF8String:must understand",
      "1.3.6.1.4.1.99999.3=ASN1:INTEGER:7",
      "subjectAltName=IP:10.1.2.3,IP:1::,IP:::ffff:0:1,IP:0:0:0:0:ffff:0:1:0,DNS:localhost",
    }, "\n") .. "\n")
    gen([[
set -e
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days 20000 -set_serial 0x0123456789abcdef01 \
  -subj "/C=DE/O=Test CA, Inc./CN=Test Root" -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:1" -addext "keyUsage=critical,keyCertSign,cRLSign"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key
openssl req -new -key rsa.key -utf8 -subj "/CN=bücher.example/O=Ünïcode GmbH/OU=a+OU=b/emailAddress=x@example.com" -out rsa.csr
openssl x509 -req -in rsa.csr -CA ca.pem -CAkey ca.key -set_serial 255 -days 365 -sha256 \
  -extfile leaf.ext -out rsa.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out p256.key
openssl req -x509 -new -key p256.key -days 2 -subj "/CN=p256.example" -extensions v3_req -out p256.pem \
  -addext "subjectAltName=DNS:p256.example,IP:127.0.0.1"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.key
openssl req -new -key p384.key -subj "/CN=p384.example/DC=example/DC=org" -out p384.csr
openssl x509 -req -in p384.csr -signkey p384.key -sha384 -days 30 -extfile custom.ext -out p384.pem 2>/dev/null
openssl genpkey -algorithm ED25519 -out ed.key
openssl req -x509 -new -key ed.key -days 30 -subj "/CN=ed25519.example" -out ed.pem \
  -addext "extendedKeyUsage=codeSigning,timeStamping,OCSPSigning,emailProtection"
openssl req -new -key p256.key -subj "/CN=v1.example/L=Town/ST=State" -out v1.csr
openssl x509 -req -in v1.csr -signkey p256.key -set_serial 0x80 -days 1 -out v1.pem 2>/dev/null
cat rsa.pem ca.pem > chain.pem
openssl x509 -in rsa.pem -outform DER -out rsa.der
]])
    local names = { "ca", "rsa", "p256", "p384", "ed", "v1" }
    local paths = {}
    for i, n in ipairs(names) do
      paths[i] = tmp .. "/" .. n .. ".pem"
      certs[n] = assert(x509.parse(readfile(paths[i])))
    end
    for i, f in ipairs(facts_for(paths)) do facts[names[i]] = f end
  end)

  lazy_teardown(function()
    if tmp then sh("rm -rf " .. tmp) end
  end)

  describe("parse", function()
    it("reads the same core fields as openssl for RSA, EC, Ed25519 and v1 certificates", function()
      for name, cert in pairs(certs) do
        assert.is_table(facts[name], name)
        assert_matches_openssl(cert, facts[name])
      end
    end)

    it("reads DER as well as PEM", function()
      local der = readfile(tmp .. "/rsa.der")
      local cert = assert(x509.parse(der))
      assert.are.equal(der, cert.der)
      assert.are.equal(certs.rsa.fingerprint_sha256, cert.fingerprint_sha256)
    end)

    it("takes the first certificate of a PEM chain", function()
      local cert = assert(x509.parse(readfile(tmp .. "/chain.pem")))
      assert.are.equal(certs.rsa.serial, cert.serial)
    end)

    it("reports versions 1 and 3", function()
      assert.are.equal(1, certs.v1.version)
      assert.are.equal(3, certs.rsa.version)
      assert.are.same({}, certs.v1.extensions)
      assert.is_nil(certs.v1.basic_constraints)
    end)

    it("prints serials as openssl does, without sign padding", function()
      assert.are.equal("ff", certs.rsa.serial)
      assert.are.equal("80", certs.v1.serial)
      assert.are.equal("0123456789abcdef01", certs.ca.serial)
    end)

    it("gives subject and issuer as ordered lists and as one-line strings", function()
      local s = certs.rsa.subject
      assert.are.same({ type = "CN", value = "bücher.example" }, s[1])
      assert.are.same({ type = "O", value = "Ünïcode GmbH" }, s[2])
      assert.are.same({ type = "OU", value = "a" }, s[3])
      assert.are.same({ type = "OU", value = "b" }, s[4])
      assert.are.same({ type = "emailAddress", value = "x@example.com" }, s[5])
      -- "OU=a+OU=b" in openssl -subj is one multi-valued RDN.
      assert.are.equal("CN=bücher.example, O=Ünïcode GmbH, OU=a + OU=b, emailAddress=x@example.com",
        certs.rsa.subject_string)
      assert.are.equal("C=DE, O=Test CA\\, Inc., CN=Test Root", certs.rsa.issuer_string)
      assert.are.same({ type = "O", value = "Test CA, Inc." }, certs.ca.subject[2])
      assert.are.equal("CN=p384.example, DC=example, DC=org", certs.p384.subject_string)
      assert.are.equal("CN=v1.example, L=Town, ST=State", certs.v1.subject_string)
    end)

    it("converts UTCTime and GeneralizedTime to epoch seconds", function()
      -- 20000 days from now is past 2049, so notAfter is a GeneralizedTime.
      assert.is_true(certs.ca.not_after > 2524608000)
      assert.are.equal(facts.ca.not_after, certs.ca.not_after)
      assert.are.equal(2 * 86400, certs.p256.not_after - certs.p256.not_before)
    end)

    it("reads every subjectAltName kind, with IPv6 in RFC 5952 form", function()
      local san = certs.rsa.san
      assert.are.same({ "www.example.com", "xn--bcher-kva.example", "*.example.org" }, san.dns)
      assert.are.same({ "192.0.2.1", "2001:db8::1", "::1", "2001:db8::1:0:0:1", "fe80::1:0:0:0" }, san.ip)
      assert.are.same({ "admin@example.com" }, san.email)
      assert.are.same({ "https://example.com/path?q=1" }, san.uri)
      assert.are.same({ "10.1.2.3", "1::", "::ffff:0.0.0.1", "::ffff:0:1:0" }, certs.p384.san.ip)
      for name, cert in pairs(certs) do
        local f = facts[name]
        if cert.san then
          assert.are.same(f.san.dns, cert.san.dns)
          assert.are.same(f.san.ip, ips(cert.san.ip))
          assert.are.same(f.san.email, cert.san.email)
          assert.are.same(f.san.uri, cert.san.uri)
        end
      end
    end)

    it("describes the public key", function()
      assert.are.same({ type = "rsa", oid = "1.2.840.113549.1.1.1", bits = 3072, exponent = 65537 },
        certs.ca.public_key)
      assert.are.equal(2048, certs.rsa.public_key.bits)
      assert.are.same({ type = "ec", oid = "1.2.840.10045.2.1", bits = 256, curve = "P-256" },
        certs.p256.public_key)
      assert.are.equal("P-384", certs.p384.public_key.curve)
      assert.are.equal(384, certs.p384.public_key.bits)
      assert.are.equal("ed25519", certs.ed.public_key.type)
    end)

    it("names the signature algorithm", function()
      assert.are.equal("sha256WithRSAEncryption", certs.rsa.signature_algorithm)
      assert.are.equal("ecdsa-with-SHA256", certs.p256.signature_algorithm)
      assert.are.equal("ecdsa-with-SHA384", certs.p384.signature_algorithm)
      assert.are.equal("ED25519", certs.ed.signature_algorithm)
    end)

    it("computes the curl --pinnedpubkey hash of the SubjectPublicKeyInfo", function()
      assert.are.equal(pki.pin(tmp .. "/rsa.pem"), certs.rsa.spki_sha256)
      assert.are.equal(pki.pin(tmp .. "/ed.pem"), certs.ed.spki_sha256)
    end)

    it("reads basic constraints, key usage and extended key usage", function()
      assert.are.same({ ca = true, path_len = 1 }, certs.ca.basic_constraints)
      assert.are.same({ ca = false }, certs.rsa.basic_constraints)
      assert.are.equal(facts.ca.path_len, certs.ca.basic_constraints.path_len)
      assert.are.same({ "keyCertSign", "cRLSign", keyCertSign = true, cRLSign = true },
        certs.ca.key_usage)
      assert.is_true(certs.rsa.key_usage.digitalSignature)
      assert.is_nil(certs.rsa.key_usage.keyCertSign)
      assert.are.same({ "serverAuth", "clientAuth", "1.3.6.1.4.1.99999.1" }, { (table.unpack or unpack)(certs.rsa.extended_key_usage) })
      assert.is_true(certs.rsa.extended_key_usage.serverAuth)
      for name, cert in pairs(certs) do
        local f = facts[name]
        if f.key_usage then assert.are.same(f.key_usage, { (table.unpack or unpack)(cert.key_usage) }) end
        if f.eku then assert.are.same(f.eku, { (table.unpack or unpack)(cert.extended_key_usage) }) end
        if cert.basic_constraints then
          assert.are.equal(f.ca, cert.basic_constraints.ca)
          assert.are.equal(f.path_len, cert.basic_constraints.path_len)
        end
      end
    end)

    it("lists every extension with its critical flag, and the ones it does not decode", function()
      for name, cert in pairs(certs) do
        local mine = {}
        for i, e in ipairs(cert.extensions) do mine[i] = { oid = e.oid, critical = e.critical } end
        assert.are.same(facts[name].extensions, mine)
      end
      assert.are.same({
        -- value: the extnValue's DER, kept for every extension
        { oid = "1.3.6.1.4.1.99999.2", name = "1.3.6.1.4.1.99999.2", critical = true,
          value = "\12\15must understand" },
        { oid = "1.3.6.1.4.1.99999.3", name = "1.3.6.1.4.1.99999.3", critical = false,
          value = "\2\1\7" },
      }, certs.p384.unknown_extensions)
      assert.are.same({}, certs.rsa.unknown_extensions)
      assert.are.equal("keyUsage", certs.rsa.extensions[3].name)
    end)
  end)

  describe("parse_chain", function()
    it("returns every certificate of a PEM bundle in order", function()
      local list = assert(x509.parse_chain(readfile(tmp .. "/chain.pem")))
      assert.are.equal(2, #list)
      assert.are.equal(certs.rsa.serial, list[1].serial)
      assert.are.equal(certs.ca.serial, list[2].serial)
    end)

    it("skips blocks that are not certificates", function()
      local pem = readfile(tmp .. "/rsa.key") .. readfile(tmp .. "/ca.pem")
      local list = assert(x509.parse_chain(pem))
      assert.are.equal(1, #list)
      assert.are.equal(certs.ca.serial, list[1].serial)
    end)

    it("fails, naming the certificate, if any certificate is bad", function()
      local bad = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"
      local list, err = x509.parse_chain(readfile(tmp .. "/ca.pem") .. bad)
      assert.is_nil(list)
      assert.matches("certificate 2", err)
    end)
  end)

  describe("pem_blocks", function()
    it("returns label and DER of each block", function()
      local blocks = assert(x509.pem_blocks(readfile(tmp .. "/rsa.key") .. readfile(tmp .. "/rsa.pem")))
      assert.are.equal(2, #blocks)
      assert.are.equal("PRIVATE KEY", blocks[1].label)
      assert.are.equal("CERTIFICATE", blocks[2].label)
      assert.are.equal(readfile(tmp .. "/rsa.der"), blocks[2].der)
    end)
  end)

  describe("system CA bundle", function()
    local files = {}
    local p = io.popen("ls /etc/ssl/certs/*.pem 2>/dev/null")
    for line in p:lines() do files[#files + 1] = line end
    p:close()

    local it_bundle = #files > 0 and it or pending
    -- Subject and issuer are compared as whole strings, which covers the CN.
    -- One batch of openssl calls serves both checks.
    local all
    local function facts()
      all = all or facts_for(files)
      return all
    end

    it_bundle("matches openssl on every certificate in /etc/ssl/certs", function()
      local f = facts()
      for i, path in ipairs(files) do
        local cert, err = x509.parse(readfile(path))
        assert(cert, path .. ": " .. tostring(err))
        local ok, e = pcall(assert_matches_openssl, cert, f[i])
        assert(ok, path .. ": " .. tostring(e))
      end
    end)

    it_bundle("reads the key type, SAN, key usage, EKU and basic constraints as openssl does", function()
      local f = facts()
      local seen = { ku = 0, bc = 0 }
      for i, path in ipairs(files) do
        local cert = assert(x509.parse(readfile(path)))
        local ok, e = pcall(assert_extensions_match_openssl, cert, f[i])
        assert(ok, path .. ": " .. tostring(e))
        if f[i].key_usage then seen.ku = seen.ku + 1 end
        if f[i].ca ~= nil then seen.bc = seen.bc + 1 end
      end
      -- the comparison really ran: root CAs nearly all carry these
      assert.is_true(seen.ku > 0 and seen.bc > 0)
    end)
  end)

  describe("malformed input", function()
    local der

    before_each(function()
      der = readfile(tmp .. "/rsa.der")
    end)

    -- Every failure is nil plus a message; never a raised error.
    local function check(input)
      local ok, cert, err = pcall(x509.parse, input)
      assert(ok, "x509.parse raised: " .. tostring(cert))
      if cert == nil then
        assert.is_string(err)
      else
        assert.is_table(cert)
      end
      return cert, err
    end

    it("rejects every truncation of a real certificate", function()
      for n = 0, #der - 1 do
        local cert, err = check(der:sub(1, n))
        assert.is_nil(cert, "accepted a certificate truncated to " .. n .. " bytes")
        assert.is_string(err)
      end
    end)

    it("rejects truncations even when the outer length is patched to match", function()
      -- Header of the real certificate is 30 82 hh ll; rewrite it for each shorter body.
      for n = 10, #der - 1, 7 do
        local body = der:sub(5, n)
        local patched = "\48\130" .. string.char(math.floor(#body / 256), #body % 256) .. body
        assert.is_nil((check(patched)))
      end
    end)

    it("survives random bit flips", function()
      math.randomseed(20240601)
      for _ = 1, 1500 do
        local pos = math.random(1, #der)
        -- flip bit k of the byte (arithmetic: this file also runs on Lua 5.1)
        local byte, k = der:byte(pos), 2 ^ math.random(0, 7)
        local b = math.floor(byte / k) % 2 == 1 and byte - k or byte + k
        check(der:sub(1, pos - 1) .. string.char(b) .. der:sub(pos + 1))
      end
    end)

    it("rejects oversized, indefinite and over-long length fields", function()
      local root = assert(asn1.decode(der))
      local nodes, stack = {}, { root }
      while #stack > 0 do
        local n = table.remove(stack)
        nodes[#nodes + 1] = n
        for _, c in ipairs(n.children or {}) do stack[#stack + 1] = c end
      end
      for _, n in ipairs(nodes) do
        local tag_end = n.pos   -- every tag in a certificate is one byte
        for _, len in ipairs({ "\132\255\255\255\255", "\128", "\137\1\0\0\0\0\0\0\0\0", "\132\127\255\255\255" }) do
          local mutated = der:sub(1, tag_end) .. len .. der:sub(n.vpos)
          local cert, err = check(mutated)
          assert.is_nil(cert)
          assert.is_string(err)
        end
      end
    end)

    it("rejects a SAN address in constructed form, which DER does not allow", function()
      -- p256's SAN holds IP:127.0.0.1 as [7] 04 7f000001; set the constructed bit
      local p256 = certs.p256.der
      local at = assert(p256:find("\135\4\127\0\0\1", 1, true))
      local cert, err = check(p256:sub(1, at - 1) .. "\167" .. p256:sub(at + 1))
      assert.is_nil(cert)
      assert.matches("subjectAltName: constructed string", err)
    end)

    it("refuses 10,000 nested SEQUENCEs quickly", function()
      local s = ""
      for _ = 1, 10000 do
        local n = #s
        local len = n < 128 and string.char(n) or n < 256 and "\129" .. string.char(n)
          or n < 65536 and "\130" .. string.char(math.floor(n / 256), n % 256)
          or "\131" .. string.char(math.floor(n / 65536), math.floor(n / 256) % 256, n % 256)
        s = "\48" .. len .. s
      end
      local cert, err = check(s)
      assert.is_nil(cert)
      local pem = "-----BEGIN CERTIFICATE-----\n" .. base64.encode(s) .. "\n-----END CERTIFICATE-----\n"
      cert, err = check(pem)
      assert.is_nil(cert)
      local tree, err2 = asn1.decode(s)
      assert.is_nil(tree)
      assert.matches("nesting", err2)
    end)

    it("rejects garbage and non-certificate PEM with a message", function()
      local cases = {
        "",
        "hello",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nMIIB\n",
        "-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n",
        "\48",
        "\48\0",
        der .. "\0",
        string.rep("-----BEGIN ", 1000),
      }
      for _, input in ipairs(cases) do
        local cert, err = check(input)
        assert.is_nil(cert)
        assert.is_string(err)
      end
      for _, v in ipairs({ 42, false, {} }) do
        local cert, err = x509.parse(v)
        assert.is_nil(cert)
        assert.is_string(err)
      end
      assert.is_nil((x509.parse_chain(nil)))
    end)
  end)
end)

describe("tls.asn1", function()
  it("reads a T61String as Latin-1, at any length, without raising", function()
    local function t61(v)
      local n = #v
      local len = n < 128 and string.char(n)
        or "\131" .. string.char(math.floor(n / 65536), math.floor(n / 256) % 256, n % 256)
      return assert(asn1.read("\20" .. len .. v, 1))
    end
    assert.are.equal("caf\195\169 \195\191", asn1.string(t61("caf\233 \255")))
    local long = ("a\233"):rep(600000)
    local ok, text = pcall(asn1.string, t61(long))
    assert(ok, text)
    assert.are.equal(("a\195\169"):rep(600000), text)
  end)
end)

describe("tls.sha256", function()
  it("matches openssl dgst for lengths around the block boundaries", function()
    local dir = mktemp()
    local inputs = {}
    for _, n in ipairs({ 0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 1000, 100000 }) do
      local t = {}
      for i = 1, n do t[i] = string.char((i * 7 + n) % 256) end
      inputs[#inputs + 1] = table.concat(t)
      writefile(dir .. "/" .. #inputs, inputs[#inputs])
    end
    local out = must("cd " .. dir .. " && for i in $(seq 1 " .. #inputs .. "); do openssl dgst -sha256 -r $i; done")
    local i = 0
    for hex in out:gmatch("(%x+) %*?%d+") do
      i = i + 1
      assert.are.equal(hex, sha256.hex(inputs[i]))
      assert.are.equal(32, #sha256.digest(inputs[i]))
    end
    assert.are.equal(#inputs, i)
    sh("rm -rf " .. dir)
  end)

  it("has the FIPS 180-2 test vector for 'abc'", function()
    assert.are.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", sha256.hex("abc"))
  end)
end)

describe("tls.base64", function()
  it("round-trips and matches RFC 4648 vectors", function()
    local vectors = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==",
                      fooba = "Zm9vYmE=", foobar = "Zm9vYmFy" }
    for plain, enc in pairs(vectors) do
      assert.are.equal(enc, base64.encode(plain))
      assert.are.equal(plain, base64.decode(enc))
    end
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    all = table.concat(all):rep(3)
    assert.are.equal(all, base64.decode(base64.encode(all)))
  end)

  it("rejects bad characters, bad length and misplaced padding, saying which", function()
    for bad, why in pairs({
      ["Zm9v!"] = "base64: length is not a multiple of 4",
      ["Zm9"] = "base64: length is not a multiple of 4",
      ["Z==="] = "base64: padding in the middle of the data",
      ["Zg==Zg=="] = "base64: padding in the middle of the data",
      ["Zg=x"] = "base64: padding in the middle of the data",
      ["Zm9*"] = "base64: invalid character at position 4",
      ["Zm9v\n Zm*v"] = "base64: invalid character at position 7",
    }) do
      local v, err = base64.decode(bad)
      assert.is_nil(v, bad)
      assert.equal(why, err, bad)
    end
    assert.same({ nil, "base64: expected a string, got number" }, { base64.decode(42) })
  end)

  it("decodes what coreutils base64 encodes, wrapped PEM-style, byte for byte", function()
    local dir = mktemp()
    local inputs = {}
    for k, n in ipairs({ 0, 1, 2, 3, 47, 48, 49, 1000, 65536 }) do
      local t = {}
      for i = 1, n do t[i] = string.char((i * 131 + k * 17) % 256) end
      inputs[k] = table.concat(t)
      writefile(dir .. "/" .. k, inputs[k])
      local text = must("base64 -w 64 " .. dir .. "/" .. k)
      assert.equal(inputs[k], base64.decode(text), "length " .. n)
      assert.equal((text:gsub("\n", "")), base64.encode(inputs[k]), "length " .. n)
    end
    sh("rm -rf " .. dir)
  end)
end)
