-- tls.policy against real servers: the module's own echo server (and
-- openssl s_server where the module refuses to serve a key) on loopback.
-- Expected pins come from the openssl CLI, not from tls.x509.

local tls = require "tls"
local libtls = require "support.libtls"
local pki = require "support.pki"
local E = require "support.engines"
local peers = require "support.peers"
local proc = require "support.proc"

local function bundle(name, files)
  local parts = {}
  for i, f in ipairs(files) do parts[i] = pki.read(f) end
  local path = pki.dir .. "/" .. name .. ".pem"
  pki.write(path, table.concat(parts))
  return path
end

local servers = {}

-- The module's echo server for a keypair, started once per keypair.
local function serve(kp)
  if servers[kp] then return servers[kp].port end
  servers[kp] = peers.echo(kp)
  return servers[kp].port
end

local kp = {}

local function connect(which, opts, host)
  local port = serve(kp[which] or pki[which])
  opts = opts or {}
  if opts.ca_file == nil and not opts.insecure_noverifycert then opts.ca_file = pki.ca.cert end
  opts.timeout = opts.timeout or 10
  return tls.connect(host or "127.0.0.1", port, opts)
end

-- Connects, proves data flows, closes. Returns true or nil, err.
local function works(which, opts, host)
  local conn, err = connect(which, opts, host)
  if not conn then return nil, err end
  assert(conn:send("ping\n"))
  local line, rerr = conn:receive("*l")
  conn:close()
  if line ~= "ping" then return nil, "echo failed: " .. tostring(rerr) end
  return true
end

setup(function()
  pki.setup()
  -- pki.chained is a leaf and the intermediate that issued it; this adds the root
  kp.chain_root = { key = pki.chained.key, cert = bundle("chain-root", { pki.chained.cert, pki.ca.cert }) }
  kp.shortlived = pki.leaf("short.localhost", { san = "DNS:localhost,IP:127.0.0.1", days = 1 })
  kp.email_only = pki.leaf("email-only", { cn = "localhost", san = "email:admin@localhost" })
  kp.weak = pki.leaf("weak.localhost", { key = "rsa1024", san = "DNS:localhost,IP:127.0.0.1" })
  kp.client_only = pki.leaf("client-only.localhost", { eku = "clientAuth",
    san = "DNS:localhost,IP:127.0.0.1" })
end)

teardown(function()
  for _, h in pairs(servers) do h.stop() end
  pki.cleanup()
end)

describe("tls.policy", function()
  describe("building", function()
    it("is callable as tls.policy{...} and as tls.policy.new{...}", function()
      assert.equal("tls.policy (require_san, strong_signatures, min_rsa_bits, pins)",
        tostring(tls.policy { pins = { pki.pin(pki.server.cert) } }))
      assert.equal("tls.policy (require_san, strong_signatures, min_rsa_bits)", tostring(tls.policy.new {}))
    end)

    it("raises on unknown rules, wrong types and malformed pins, naming them", function()
      assert.error_matches(function() tls.policy { pin = {} } end, "unknown rule 'pin'")
      assert.error_matches(function() tls.policy { min_rsa_bits = "2048" } end,
        "rule 'min_rsa_bits' must be a number")
      assert.error_matches(function() tls.policy { pins = { "sha256//abc" } } end,
        "pins%[1%]: 'sha256//abc' is not a SHA%-256 pin")
      assert.error_matches(function() tls.policy { pins = {} } end, "empty list")
      assert.error_matches(function() tls.policy { check = 1 } end, "rule 'check' must be a function")
      assert.error_matches(function() tls.policy { on_expiring = print } end, "needs 'expires_within'")
      assert.error_matches(function() tls.policy { require_san = "yes" } end,
        "'require_san' must be a boolean")
      assert.error_matches(function() tls.policy { strong_signatures = 1 } end,
        "'strong_signatures' must be a boolean")
    end)

    it("rejects a policy option that is neither callable nor false", function()
      assert.error_matches(function() connect("server", { policy = "strict" }) end,
        "option 'policy' must be a function")
    end)
  end)

  describe("pins", function()
    it("accepts a server whose leaf matches the pin (bare and sha256// forms)", function()
      local pin = pki.pin(pki.server.cert)
      assert.is_true(works("server", { policy = tls.policy { pins = { pin } } }))
      assert.is_true(works("server", { policy = tls.policy { pins = { "sha256//" .. pin } } }))
    end)

    it("rejects a mismatch, closing the conn with a policy: error that shows the leaf's pin", function()
      local conn, err = connect("server", { policy = tls.policy { pins = { pki.pin(pki.alt.cert) } } })
      assert.is_nil(conn)
      assert.matches("^policy: pins: no certificate of the verified path matches", err)
      assert.truthy(err:find("sha256//" .. pki.pin(pki.server.cert), 1, true))
      assert.is_true(tls.is_policy_error(err))
    end)

    it("accepts a backup pin: any pin in the list may match", function()
      local pins = { pki.pin(pki.alt.cert), pki.pin(pki.server.cert) }
      assert.is_true(works("server", { policy = tls.policy { pins = pins } }))
      -- curl's one-string form, ';'-separated
      assert.is_true(works("server", { policy = tls.policy {
        pins = "sha256//" .. pins[1] .. ";sha256//" .. pins[2] } }))
    end)

    it("matches an intermediate the server sends in its chain", function()
      local p = tls.policy { pins = { pki.pin(pki.intermediate.cert) } }
      assert.is_true(works("chained", { policy = p }))
      -- the same pin does not match a server whose chain lacks that CA
      local conn, err = connect("server", { policy = p })
      assert.is_nil(conn)
      assert.matches("^policy: pins:", err)
    end)

    it("matches the trust anchor the path ends at, whether the server sends it or not", function()
      local p = tls.policy { pins = { pki.pin(pki.ca.cert) } }
      assert.is_true(works("chain_root", { policy = p }))
      assert.is_true(works("chained", { policy = p }))
      -- a root the client does not trust is no anchor
      local conn, err = connect("chained", { policy = p, ca_file = pki.other_ca.cert,
        insecure_noverifycert = true })
      assert.is_nil(conn)
      assert.matches("^policy: pins: .*chain verification is off", err)
    end)
  end)

  describe("require_san", function()
    it("is on by default: tls.connect rejects a CN-only server certificate", function()
      local conn, err = connect("cn_only", nil, "localhost")
      assert.is_nil(conn)
      assert.matches("^policy: require_san: the server certificate 'CN=localhost' has no DNS or IP "
        .. "subjectAltName", err)
    end)

    it("accepts the CN-only certificate with require_san = false or policy = false", function()
      assert.is_true(works("cn_only", { policy = tls.policy { require_san = false } }, "localhost"))
      assert.is_true(works("cn_only", { policy = false }, "localhost"))
    end)

    it("does not let a CN stand in when the SAN holds only an e-mail address", function()
      -- libtls would match "localhost" against the CN here
      assert.is_true(works("email_only", { policy = false }, "localhost"))
      local conn, err = connect("email_only", nil, "localhost")
      assert.is_nil(conn)
      assert.matches("^policy: require_san:", err)
    end)

    it("accepts SAN names and IP addresses that cover what the client asked for", function()
      assert.is_true(works("server", nil, "localhost"))
      assert.is_true(works("server", nil, "127.0.0.1"))
    end)

    it("matches the requested name against the SAN only, when called with the client's context", function()
      local conn = assert(connect("server", nil, "localhost"))
      local p = tls.policy {}
      assert.is_true(p(conn, { mode = "client", servername = "localhost", verify_name = true }))
      assert.is_true(p(conn, { mode = "client", servername = "127.0.0.1", verify_name = true }))
      local ok, err = p(conn, { mode = "client", servername = "other.test", verify_name = true })
      assert.is_nil(ok)
      assert.matches("^policy: require_san: .* does not name 'other.test' in its subjectAltName", err)
      -- name checks turned off (insecure_noverifyname): only the SAN's presence counts
      assert.is_true(p(conn, { mode = "client", servername = "other.test", verify_name = false }))
      conn:close()
    end)

    it("applies only when a name is checked: insecure_noverifyname accepts a CN-only certificate", function()
      -- no name is matched, so which field would hold it does not matter
      assert.is_true(works("cn_only", { insecure_noverifyname = true }, "localhost"))
      local conn = assert(connect("cn_only", { insecure_noverifyname = true }, "localhost"))
      local p = tls.policy {}
      assert.is_true(p(conn, { mode = "client", servername = "localhost", verify_name = false }))
      local ok, err = p(conn, { mode = "client", servername = "localhost", verify_name = true })
      assert.is_nil(ok)
      assert.matches("^policy: require_san:", err)
      conn:close()
    end)

    it("accepts a client name with a trailing dot that the SAN covers", function()
      assert.is_true(works("server", { servername = "localhost." }, "127.0.0.1"))
      local conn = assert(connect("server", nil, "localhost"))
      assert.is_true(tls.policy {}(conn, { mode = "client", servername = "localhost.", verify_name = true }))
      conn:close()
    end)

    it("keeps insecure_noverifyname working under the default policy", function()
      -- pki.alt names only alt.test
      assert.is_true(works("alt", { insecure_noverifyname = true }, "localhost"))
    end)
  end)

  describe("key sizes", function()
    it("min_rsa_bits defaults to 2048 and accepts a 2048-bit RSA server", function()
      assert.is_true(works("server_rsa"))
    end)

    it("rejects a 2048-bit RSA server when min_rsa_bits = 3072", function()
      local conn, err = connect("server_rsa", { policy = tls.policy { min_rsa_bits = 3072 } })
      assert.is_nil(conn)
      assert.equal("policy: min_rsa_bits: the leaf 'CN=rsa.localhost' has a 2048-bit RSA key, "
        .. "below the minimum of 3072 bits", err)
    end)

    describe("a 1024-bit RSA server key (openssl s_server at SECLEVEL=0)", function()
      local h, port
      setup(function()
        port = proc.free_port()
        h = proc.start(("openssl s_server -accept 127.0.0.1:%d -cert %s -key %s "
          .. "-cipher DEFAULT@SECLEVEL=0 -quiet"):format(port, kp.weak.cert, kp.weak.key), { port = port })
      end)
      teardown(function() if h then h.stop() end end)

      -- the same certificate is refused with the same prefix on both
      -- libraries: OpenSSL's security level refuses it inside the handshake,
      -- LibreSSL has none and the default policy's min_rsa_bits refuses it
      it("is refused as a policy: failure, by the library or the default policy", function()
        local conn, err = tls.connect("127.0.0.1", port, { ca_file = pki.ca.cert, timeout = 10 })
        assert.is_nil(conn)
        assert.is_true(tls.is_policy_error(err), err)
        if libtls.libressl then
          assert.equal("policy: min_rsa_bits: the leaf 'CN=weak.localhost' has a 1024-bit RSA key, "
            .. "below the minimum of 2048 bits", err)
        else
          assert.matches("^policy: the TLS library's security level refused the certificate "
            .. "%(certificate verification failed: EE certificate key too weak%)$", err)
        end
      end)

      it("is refused by min_rsa_bits when chain verification is off", function()
        local conn, err = tls.connect("127.0.0.1", port, { insecure_noverifycert = true, timeout = 10,
          servername = "localhost", policy = tls.policy {} })
        assert.is_nil(conn)
        assert.equal("policy: min_rsa_bits: the leaf 'CN=weak.localhost' has a 1024-bit RSA key, "
          .. "below the minimum of 2048 bits", err)
      end)
    end)

    it("min_ec_bits rejects a P-256 server when 384 bits are required", function()
      assert.is_true(works("server", { policy = tls.policy { min_ec_bits = 256 } }))
      local conn, err = connect("server", { policy = tls.policy { min_ec_bits = 384 } })
      assert.is_nil(conn)
      assert.matches("^policy: min_ec_bits: the leaf 'CN=localhost' has a 256%-bit EC key", err)
    end)
  end)

  describe("max_validity_days", function()
    it("rejects a leaf valid for longer, accepts one within the limit", function()
      -- pki.server is issued for 365 days
      assert.is_true(works("server", { policy = tls.policy { max_validity_days = 398 } }))
      local conn, err = connect("server", { policy = tls.policy { max_validity_days = 90 } })
      assert.is_nil(conn)
      assert.matches("^policy: max_validity_days: the leaf 'CN=localhost' is valid for 365 days", err)
    end)
  end)

  describe("expires_within", function()
    it("calls on_expiring for a certificate that expires within the window, and connects", function()
      local calls = {}
      local p = tls.policy { expires_within = 2, on_expiring = function(cert, days_left, conn, index)
        calls[#calls + 1] = { subject = cert.subject_string, days = days_left, conn = conn, index = index }
      end }
      assert.is_true(works("shortlived", { policy = p }))
      assert.equal(1, #calls)
      assert.equal("CN=short.localhost", calls[1].subject)
      assert.equal(1, calls[1].index)
      assert.is_true(calls[1].days > 0.9 and calls[1].days <= 1.001)
      assert.matches("^tls%.conn", tostring(calls[1].conn))
    end)

    it("does not call on_expiring outside the window", function()
      local called = false
      local p = tls.policy { expires_within = 0.5, on_expiring = function() called = true end }
      assert.is_true(works("shortlived", { policy = p }))
      assert.is_false(called)
    end)

    it("fails closed when on_expiring raises", function()
      local p = tls.policy { expires_within = 2, on_expiring = function() error("boom") end }
      local conn, err = connect("shortlived", { policy = p })
      assert.is_nil(conn)
      assert.matches("^policy: expires_within: on_expiring raised: .*boom", err)
    end)
  end)

  describe("issuers", function()
    it("accepts the issuer's name in x509 form and in libtls's /CN= form", function()
      assert.is_true(works("server", { policy = tls.policy { issuers = { "CN=lua-tls-test-root" } } }))
      assert.is_true(works("server", { policy = tls.policy { issuers = "/CN=lua-tls-test-root" } }))
    end)

    it("accepts any issuer up the chain, by name or by the pin of a CA the server sends", function()
      assert.is_true(works("chained", { policy = tls.policy { issuers = { "CN=lua-tls-test-root" } } }))
      assert.is_true(works("chained", { policy = tls.policy {
        issuers = { "CN=someone else", "sha256//" .. pki.pin(pki.intermediate.cert) } } }))
    end)

    it("rejects a chain from other issuers, listing the issuers it saw", function()
      local conn, err = connect("server", { policy = tls.policy { issuers = { "CN=Some Other CA" } } })
      assert.is_nil(conn)
      assert.equal("policy: issuers: no certificate of the verified path was issued by an allowed issuer "
        .. "(issuers seen: 'CN=lua-tls-test-root')", err)
      conn, err = connect("server", { policy = tls.policy { issuers = { pki.pin(pki.intermediate.cert) } } })
      assert.is_nil(conn)
      assert.matches("^policy: issuers:", err)
    end)
  end)

  describe("eku", function()
    it("accepts a leaf that lists the required extended key usages", function()
      assert.is_true(works("server", { policy = tls.policy { eku = "serverAuth" } }))
      assert.is_true(works("server", { policy = tls.policy { eku = { "serverAuth", "clientAuth" } } }))
    end)

    it("a clientAuth-only certificate served as a server is refused by libtls first (verify:)", function()
      local conn, err = connect("client_only")
      assert.is_nil(conn)
      assert.matches("^verify: .*purpose", err)
    end)

    it("rejects it with eku = \"serverAuth\" when chain verification is off", function()
      local conn, err = connect("client_only", { insecure_noverifycert = true,
        policy = tls.policy { eku = "serverAuth" } })
      assert.is_nil(conn)
      assert.equal("policy: eku: the leaf 'CN=client-only.localhost' does not list the extended "
        .. "key usage 'serverAuth' (it has: clientAuth)", err)
    end)
  end)

  describe("check (a custom function)", function()
    it("gets the parsed chain, the conn and the client's context, and can accept", function()
      local seen
      local port = serve(pki.server)
      local p = tls.policy { check = function(chain, conn, ctx)
        seen = { subject = chain[1].subject_string, issuer = chain[1].issuer_string,
          n = #chain, version = conn:info().version, host = ctx.host, port = ctx.port,
          servername = ctx.servername }
        return true
      end }
      assert.is_true(works("server", { policy = p }, "localhost"))
      assert.same({ subject = "CN=localhost", issuer = "CN=lua-tls-test-root", n = 1,
        version = seen.version, host = "localhost", port = tostring(port),
        servername = "localhost" }, seen)
      assert.matches("^TLSv1%.[23]$", seen.version)
    end)

    it("rejects with its reason, prefixed with policy: check:", function()
      local p = tls.policy { check = function(chain)
        return nil, "serial " .. chain[1].serial .. " is on my deny list"
      end }
      local conn, err = connect("server", { policy = p })
      assert.is_nil(conn)
      assert.matches("^policy: check: serial %x+ is on my deny list$", err)
    end)

    it("fails closed when the function raises", function()
      local conn, err = connect("server", { policy = tls.policy { check = function() error("oops") end } })
      assert.is_nil(conn)
      assert.matches("^policy: check: raised: .*oops", err)
    end)

    it("runs after the built-in rules", function()
      local ran = false
      local conn, err = connect("server", { policy = tls.policy { min_ec_bits = 521,
        check = function() ran = true; return true end } })
      assert.is_nil(conn)
      assert.matches("^policy: min_ec_bits:", err)
      assert.is_false(ran)
    end)
  end)

  describe("plain functions as opts.policy", function()
    it("may return false and a reason without the prefix; init.lua adds it", function()
      local conn, err = connect("server", { policy = function() return nil, "not today" end })
      assert.is_nil(conn)
      assert.equal("policy: not today", err)
    end)
  end)

  describe("on a wrapped LuaSocket connection", function()
    it("handshake() fails with the policy's reason and the conn moves no data", function()
      local socket = require "socket"
      local port = serve(pki.cn_only)
      local s = assert(socket.tcp())
      s:settimeout(10)
      assert(s:connect("127.0.0.1", port))
      local conn = assert(tls.wrap(s, { ca_file = pki.ca.cert, servername = "localhost", timeout = 10 }))
      local ok, err = conn:handshake()
      assert.is_nil(ok)
      assert.matches("^policy: require_san:", err)
      assert.is_nil((conn:send("x\n")))
      conn:close()
      s:close()
    end)
  end)

  describe("on engines", function()
    -- Both handshakes -> true, true; or the side that failed gives its error.
    local function pump(cli, srv)
      local ok, err = E.handshake(cli, srv)
      if ok then return true, true end
      return err:match("^client: (.*)"), err:match("^server: (.*)")
    end

    local function server_engine(keypair, extra)
      local opts = { mode = "server", cert_file = keypair.cert, key_file = keypair.key }
      for k, v in pairs(extra or {}) do opts[k] = v end
      return assert(tls.engine(opts))
    end

    it("the default policy applies to a client engine (CN-only server rejected)", function()
      local cli = assert(tls.engine { ca_file = pki.ca.cert, servername = "localhost" })
      local c = pump(cli, server_engine(pki.cn_only))
      assert.matches("^policy: require_san:", c)
    end)

    it("pins apply to a client engine: a match passes, a mismatch fails", function()
      local cli = assert(tls.engine { ca_file = pki.ca.cert, servername = "localhost",
        policy = tls.policy { pins = { pki.pin(pki.server.cert) } } })
      local c, s = pump(cli, server_engine(pki.server))
      assert.is_true(c)
      assert.is_true(s)
      cli = assert(tls.engine { ca_file = pki.ca.cert, servername = "localhost",
        policy = tls.policy { pins = { pki.pin(pki.alt.cert) } } })
      c = pump(cli, server_engine(pki.server))
      assert.matches("^policy: pins:", c)
    end)

    it("a server engine applies its policy to the client's certificate", function()
      local client_pin = pki.pin(pki.client.cert)
      local function run(pins)
        local srv = server_engine(pki.server, { ca_file = pki.ca.cert, verify_client = true,
          policy = tls.policy { pins = pins, eku = "clientAuth" } })
        local cli = assert(tls.engine { ca_file = pki.ca.cert, servername = "localhost",
          cert_file = pki.client.cert, key_file = pki.client.key })
        return pump(cli, srv)
      end
      local _, s = run({ client_pin })
      assert.is_true(s)
      _, s = run({ pki.pin(pki.alt.cert) })
      assert.matches("^policy: pins:", s)
    end)

    it("require_san is a client-side rule: a server accepts a CN-only client certificate", function()
      local srv = server_engine(pki.server, { ca_file = pki.ca.cert, verify_client = true,
        policy = tls.policy {} })
      local cli = assert(tls.engine { ca_file = pki.ca.cert, servername = "localhost",
        cert_file = pki.cn_only.cert, key_file = pki.cn_only.key })
      local c, s = pump(cli, srv)
      assert.is_true(c)
      assert.is_true(s)
    end)
  end)

  describe("helpers", function()
    it("name_matches: a wildcard only as the whole left-most label, never over a bare suffix", function()
      local m = tls.policy.name_matches
      assert.is_true(m("*.example.com", "www.example.com"))
      assert.is_true(m("*.Example.COM", "WWW.example.com"))
      -- names are compared as given: a client drops a trailing dot first
      -- (san_covers does), a server matches the SNI name as sent
      assert.is_false(m("*.example.com", "a.example.com."))
      assert.is_false(m("a.example.com", "a.example.com."))
      assert.is_true(m("localhost", "LocalHost"))
      assert.is_false(m("*.example.com", "example.com"))
      assert.is_false(m("*.example.com", "a.b.example.com"))
      assert.is_false(m("*.com", "example.com"))
      assert.is_false(m("f*.example.com", "foo.example.com"))
      assert.is_false(m("www.*.com", "www.example.com"))
      assert.is_false(m("", ""))
    end)

    it("name_matches is the SNI matcher of conn:keypair(): one function, one answer", function()
      assert.equal(require("tls.hostname").matches, tls.policy.name_matches)
      assert.equal(require("tls.hostname").matches, require("tls.sni").match_name)
    end)

    it("san_covers drops one trailing dot from the client's name, as a libtls client does", function()
      local cert = { san = { dns = { "*.example.com", "localhost" }, ip = {} } }
      assert.is_true(tls.policy.san_covers(cert, "www.example.com."))
      assert.is_true(tls.policy.san_covers(cert, "localhost."))
      assert.is_false(tls.policy.san_covers(cert, "localhost.."))
    end)

    it("ip_bytes: IPv4 and IPv6 text to bytes, nil for a host name", function()
      local ip = tls.policy.ip_bytes
      assert.equal("\127\0\0\1", ip("127.0.0.1"))
      assert.equal(("\0"):rep(15) .. "\1", ip("::1"))
      assert.equal(ip("::1"), ip("[0:0:0:0:0:0:0:1]"))
      assert.equal(ip("::ffff:7f00:1"), ip("::FFFF:127.0.0.1"))
      for _, bad in ipairs({ "localhost", "010.0.0.1", "1.2.3.256", "1.2.3", "1::2::3", "1:2:3:4:5:6:7:8:9" }) do
        assert.is_nil(ip(bad), bad)
      end
    end)

    it("san_covers: names against dNSName entries, addresses against iPAddress entries", function()
      local cert = { san = { dns = { "*.example.com", "10.0.0.1" }, ip = { "2001:db8::1" } } }
      assert.is_true(tls.policy.san_covers(cert, "www.example.com"))
      assert.is_true(tls.policy.san_covers(cert, "2001:DB8:0:0::1"))
      assert.is_false(tls.policy.san_covers(cert, "10.0.0.1"))
      assert.is_false(tls.policy.san_covers({}, "www.example.com"))
    end)

    it("normalize_pin: the sha256// and bare forms give the bare base64, anything else a reason", function()
      local pin = pki.pin(pki.server.cert)
      assert.equal(pin, tls.policy.normalize_pin("sha256//" .. pin))
      assert.equal(pin, tls.policy.normalize_pin(" " .. pin .. " "))
      local ok, why = tls.policy.normalize_pin("sha256//" .. pin:sub(5))
      assert.is_nil(ok)
      assert.matches("is not a SHA%-256 pin", why)
      assert.matches("must be a string", select(2, tls.policy.normalize_pin(42)))
    end)

    it("peer_chain: the leaf first, even when a server's view of the chain puts it later", function()
      local leaf, inter = pki.read(pki.chained.leaf_cert), pki.read(pki.intermediate.cert)
      local hash = "SHA256:" .. tls.x509.parse(leaf).fingerprint_sha256:gsub(":", ""):lower()
      local conn = { peer = function() return { chain_pem = inter .. leaf, hash = hash } end }
      local chain = assert(tls.policy.peer_chain(conn))
      assert.same({ "CN=chained.localhost", "CN=lua-tls-test-intermediate" },
        { chain[1].subject_string, chain[2].subject_string })
      local ok, err = tls.policy.peer_chain({ peer = function() return nil end })
      assert.is_nil(ok)
      assert.equal("peer: the peer sent no certificate", err)
    end)

    it("peer_chain: a chain without the peer's own certificate fails, never passes a sent one off as the leaf", function()
      -- the leaf counts because the handshake proved its key: an appended
      -- intermediate must not take its place when the leaf is missing
      local leaf, inter = pki.read(pki.chained.leaf_cert), pki.read(pki.intermediate.cert)
      local hash = "SHA256:" .. tls.x509.parse(leaf).fingerprint_sha256:gsub(":", ""):lower()
      local conn = { peer = function() return { chain_pem = inter, hash = hash } end }
      local ok, err = tls.policy.peer_chain(conn)
      assert.is_nil(ok)
      assert.equal("peer: the certificate chain does not hold the peer's certificate (" .. hash .. ")", err)
      ok, err = tls.policy { pins = pki.pin(pki.intermediate.cert) }(conn,
        { mode = "server", verify_cert = false })
      assert.is_nil(ok)
      assert.matches("^policy: peer: the certificate chain does not hold the peer's certificate", err)
    end)

    it("peer_chain: each call gets its own list, so a check that edits it harms no later call", function()
      local pem = pki.read(pki.chained.cert)
      local conn = { peer = function() return { chain_pem = pem } end }
      local seen = {}
      local p = tls.policy { check = function(chain)
        seen[#seen + 1] = #chain
        table.remove(chain, 1)
        return true
      end }
      local ctx = { mode = "client", verify_cert = true }
      assert.is_true(p(conn, ctx))
      assert.is_true(p(conn, ctx))
      assert.same({ 2, 2 }, seen)
    end)

    it("check_chain checks a chain parsed by tls.x509, without a connection", function()
      local chain = assert(tls.x509.parse_chain(pki.read(pki.cn_only.cert)))
      local ok, err = tls.policy.default:check_chain(chain)
      assert.is_nil(ok)
      assert.matches("^policy: require_san:", err)
      assert.is_true(tls.policy { require_san = false }:check_chain(chain))
      assert.equal("policy: peer: no certificate to check", select(2, tls.policy.default:check_chain({})))
    end)

    it("min_rsa_bits = false turns the default minimum off", function()
      assert.equal("tls.policy (require_san, strong_signatures)", tostring(tls.policy { min_rsa_bits = false }))
    end)
  end)

  describe("tls.policy.default", function()
    it("is a tls.policy with require_san, strong_signatures and min_rsa_bits = 2048", function()
      assert.equal("tls.policy (require_san, strong_signatures, min_rsa_bits)", tostring(tls.policy.default))
      assert.equal(2048, tls.policy.default.rules.min_rsa_bits)
      assert.is_true(tls.policy.default.rules.require_san)
      assert.is_true(tls.policy.default.rules.strong_signatures)
    end)
  end)
end)
