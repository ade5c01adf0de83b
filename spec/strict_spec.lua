-- tls.policy.strict: RFC 5280 / CA/Browser Forum rules that libtls does not
-- check. The certificates are x509-limbo cases (spec/conformance/, the suite
-- `make limbo` runs in full); these specs pin each rule's behaviour and show
-- the policy working in a real handshake between two engines.

local tls = require "tls"
local x509 = require "tls.x509"
local asn1 = require "tls.asn1"
local strict = require "tls.strict"
local json = require "dkjson"
local E = require "support.engines"

local cases = {}
do
  local f = assert(io.open("spec/conformance/x509-limbo.json", "rb"))
  for _, c in ipairs(json.decode(f:read("*a")).testcases) do cases[c.id] = c end
  f:close()
end

-- The chain the peer would send (leaf first) and the trusted root, parsed.
local function load(id)
  local c = assert(cases[id], id)
  local path = { assert(x509.parse(c.peer_certificate)) }
  for _, pem in ipairs(c.untrusted_intermediates) do path[#path + 1] = assert(x509.parse(pem)) end
  return path, assert(x509.parse(c.trusted_certs[1])), c
end

local function refusal(id, with_anchor)
  local path, anchor = load(id)
  local ok, why = strict.check_path(path, with_anchor and anchor or nil)
  assert.is_nil(ok, id .. " should be refused")
  return why
end

-- A handshake between two engines: the server presents the case's chain,
-- the client trusts the case's roots and checks its name with `policy`.
local function handshake(id, policy)
  local c = cases[id]
  local server = assert(tls.engine { mode = "server", cert = c.peer_certificate
    .. table.concat(c.untrusted_intermediates), key = c.peer_certificate_key })
  local client = assert(tls.engine { mode = "client", ca = table.concat(c.trusted_certs),
    servername = c.expected_peer_name.value, policy = policy })
  local ok, err = E.handshake(client, server)
  if ok then return true end
  return nil, assert(err:match("^client: (.*)"), err)  -- only the client may refuse
end

describe("tls.policy.strict", function()
  it("is a ready policy, loaded on first use", function()
    assert.equal(strict.policy, tls.policy.strict)
    assert.truthy(tostring(tls.policy.strict):find("serial", 1, true))
    assert.equal("table", type(getmetatable(tls.policy.strict)))
    assert.equal("function", type(getmetatable(tls.policy.strict).__call))
  end)

  describe("in a handshake", function()
    it("refuses what libtls and the default policy accept, naming the rule and its reference", function()
      assert.truthy(handshake("rfc5280::serial::zero"))
      local ok, err = handshake("rfc5280::serial::zero", tls.policy.strict)
      assert.is_nil(ok)
      assert.equal("policy: strict: serial: the leaf serial number is zero (RFC 5280 4.1.2.2)", err)
      assert.truthy(tls.is_policy_error(err))
    end)

    it("accepts valid certificates, the default policy's rules still applying", function()
      assert.truthy(handshake("rfc5280::nc::permitted-dns-match-more", tls.policy.strict))
      assert.truthy(handshake("webpki::nc::nc-permits-dns-san-pattern", tls.policy.strict))
      local ok, err = handshake("webpki::san::no-san", tls.policy.strict)
      assert.is_nil(ok)
      assert.truthy(err:find("^policy: require_san:"))
    end)
  end)

  describe("rules", function()
    local function expect(id, pattern, with_anchor)
      local why = refusal(id, with_anchor)
      assert.truthy(why:find(pattern), id .. ": " .. why)
    end

    it("serial numbers: not zero, at most 20 octets (RFC 5280 4.1.2.2)", function()
      expect("rfc5280::serial::zero", "^serial: the leaf serial number is zero")
      expect("rfc5280::serial::too-long", "^serial: the leaf serial number is 22 octets long")
    end)

    it("key identifiers: AKI on leaf and intermediates, SKI on CAs (RFC 5280 4.2.1.1-2)", function()
      expect("rfc5280::aki::leaf-missing-aki", "^authority_key_id: the leaf")
      expect("rfc5280::aki::intermediate-missing-aki", "^authority_key_id: certificate 2 of the path")
      expect("rfc5280::ski::intermediate-missing-ski", "^subject_key_id: certificate 2")
    end)

    it("policyConstraints must be critical (RFC 5280 4.2.1.11)", function()
      expect("rfc5280::pc::ica-noncritical-pc", "^policy_constraints: certificate 2")
    end)

    it("name constraints: only in CAs, well formed, and applied to wildcard names", function()
      expect("rfc5280::nc::not-allowed-in-ee-critical", "^name_constraints: the leaf is not a CA")
      expect("webpki::nc::intermediate-permitted-excluded-subtrees-both-empty-sequences",
        "^name_constraints: certificate 2 of the path has nameConstraints that")
      expect("cve::cve-2025-61727", "%*%.example%.com falls in the excluded subtree bar%.example%.com")
      expect("rfc5280::nc::nc-forbids-dnsname-wildcard-san", "excluded subtree")
    end)

    it("SAN: dNSName syntax, and criticality against the subject (RFC 5280 4.2.1.6, BR 7.1.2.7.12)", function()
      expect("rfc5280::san::underscore-dns", "^san_syntax: .*'foo_bar%.example%.com' has a character other than")
      expect("rfc5280::nc::nc-permits-invalid-dns-san", "^san_syntax: .*'%.example%.com' has an empty label")
      expect("rfc5280::san::noncritical-with-empty-subject", "^san_critical: the leaf has an empty subject")
      expect("webpki::san::san-critical-with-nonempty-subject", "^san_critical: the leaf has a subject and a critical")
    end)

    it("a leaf is no CA, and its EKU is neither critical nor anyExtendedKeyUsage", function()
      expect("rfc5280::leaf-ku-keycertsign", "^leaf_is_ca: .*keyCertSign without")
      expect("webpki::ee-basicconstraints-ca", "^leaf_is_ca: .*cA without")
      expect("webpki::eku::ee-anyeku", "^leaf_eku: .*anyExtendedKeyUsage")
      expect("webpki::eku::ee-critical-eku", "^leaf_eku: .*critical extKeyUsage")
      -- RFC 5280 allows a leaf without EKU (the BR do not): left alone
      assert.truthy(strict.check_path((load("rfc5280::eku::ee-without-eku"))))
    end)

    it("keys: no DSA, RSA moduli a multiple of 8 bits (BR 6.1.5); AIA well formed", function()
      expect("webpki::forbidden-rsa-key-not-divisible-by-8-in-leaf", "^key_type: .*2052 bits")
      expect("webpki::malformed-aia", "^aia: the leaf")
    end)

    it("the subject CN: one of the SAN values where it is meant as one (BR 7.1.4.3)", function()
      expect("webpki::cn::case-mismatch", "in letter case")
      expect("webpki::cn::ipv6-uppercase-mismatch", "IP address not spelt as in the SAN")
      expect("webpki::cn::ipv4-hex-mismatch", "IP address not spelt as in the SAN")
      expect("webpki::cn::utf8-vs-punycode-mismatch", "is not ASCII")
      expect("webpki::cn::punycode-not-in-san", "punycode")
      expect("webpki::cn::not-in-san", "names a host the SAN does not hold")
      -- a CN that is no host name is left alone, whatever its script
      local common_name
      for _, r in ipairs(strict.rules) do if r.name == "common_name" then common_name = r end end
      for _, cn in ipairs({ "Société Générale", "x509-limbo-intermediate", "Version 1.2", "foo" }) do
        local leaf = { subject = { { type = "CN", value = cn } }, san = { dns = { "example.com" }, ip = {} } }
        assert.is_nil(common_name.check(leaf, "leaf", { leaf }), cn)
      end
      -- valid certificates whose CN is the SAN's parent domain, or beside IP-only SANs
      for _, id in ipairs({ "rfc5280::nc::permitted-dns-match-more", "webpki::san::leftmost-wildcard-san",
        "webpki::san::exact-localhost-ip-san", "rfc5280::nc::permitted-ipv4-match" }) do
        local path = load(id)
        assert.truthy(strict.check_path(path), id)
      end
    end)

    it("checks the trust anchor when it is known, and only then", function()
      for id, pattern in pairs({
        ["rfc5280::root-missing-basic-constraints"] = "^basic_constraints: the trust anchor is a CA certificate without",
        ["webpki::eku::root-has-eku"] = "^root_eku: the trust anchor",
        ["webpki::forbidden-dsa-root"] = "^key_type: the trust anchor has a DSA key",
        ["webpki::aki::root-with-aki-missing-keyidentifier"] = "^root_authority_key_id: the trust anchor has an authorityKeyIdentifier without keyIdentifier",
        ["rfc5280::nc::invalid-dnsname-leading-period"] = "^name_constraints: the trust anchor .*'%.example%.com' has an empty label",
      }) do
        assert.truthy(strict.check_path((load(id))), id .. " without its anchor")
        local why = refusal(id, true)
        assert.truthy(why:find(pattern), id .. ": " .. why)
      end
    end)

    it("accepts the public web's chains, whose roots break some MUSTs (serial 0, no SKI, non-critical basicConstraints)", function()
      -- x509-limbo's online:: cases are real chains (no key: make limbo
      -- cannot run them as handshakes); fastly.com's root has serial 0
      local n = 0
      for id, c in pairs(cases) do
        if id:find("^online::") then
          local path, anchor = load(id)
          assert.truthy(strict.check_path(path, anchor), id)
          n = n + 1
        end
      end
      assert.is_true(n >= 10)
      -- and every root of the system store, as a trust anchor
      local f = io.open("/etc/ssl/certs/ca-certificates.crt", "rb")
      if f then
        local roots = assert(x509.parse_chain(f:read("*a")))
        f:close()
        for _, root in ipairs(roots) do
          local leaf = load("rfc5280::nc::permitted-dns-match-more")
          local ok, why = strict.check_path({ leaf[1] }, root)
          assert(ok or not why:find("trust anchor", 1, true), root.subject_string .. ": " .. tostring(why))
        end
      end
      for _, id in ipairs({ "rfc5280::ski::root-missing-ski", "rfc5280::root-non-critical-basic-constraints" }) do
        local path, anchor = load(id)
        assert.truthy(strict.check_path(path, anchor), id)
      end
    end)

    it("accepts a trust anchor's non-critical nameConstraints (the user's configuration; webpki agrees)", function()
      for _, id in ipairs({ "webpki::nc::permitted-dns-match-noncritical",
          "rfc5280::nc::permitted-dns-match-noncritical" }) do
        local path, anchor = load(id)
        assert.truthy(strict.check_path(path, anchor), id)
      end
    end)
  end)
end)

describe("tls.x509 extensions", function()
  it("keep the raw DER value of every extension, decoded or not", function()
    local leaf = x509.parse(cases["rfc5280::nc::not-allowed-in-ee-critical"].peer_certificate)
    local nc
    for _, e in ipairs(leaf.extensions) do
      assert.equal("string", type(e.value), e.name)
      if e.name == "nameConstraints" then nc = e end
    end
    assert.truthy(nc and nc.critical)
    local node = asn1.read(nc.value, 1)
    assert.truthy(asn1.is(node, asn1.SEQUENCE))
    local undecoded = false
    for _, e in ipairs(leaf.unknown_extensions) do undecoded = undecoded or e == nc end
    assert.truthy(undecoded, "nameConstraints is not decoded into a field, yet keeps its value")
  end)
end)
