-- Secure by default: TLS 1.2/1.3 only, AEAD ciphers with forward secrecy
-- only, the chain and the name verified, the system trust store read
-- through its hashed directory. Each refusal has a control that succeeds, so
-- the refusal is known to come from the default under test.
local tls = require "tls"
local libtls = require "support.libtls"
local pki = require "support.pki"
local peers = require "support.peers"

local function try_connect(keypair, server_args, opts)
  local srv = peers.s_server(keypair, server_args)
  opts = opts or { ca_file = pki.ca.cert }
  opts.timeout = 10
  local conn, err = tls.connect("localhost", srv.port, opts)
  local info = conn and conn:info()
  if conn then conn:close() end
  srv.stop()
  return info, err
end

describe("secure defaults", function()
  setup(function() pki.setup() end)
  teardown(function() pki.cleanup() end)

  describe("the client offers TLS 1.2 and 1.3 only", function()
    it("refuses a TLS 1.1 server", function()
      local info, err = try_connect(pki.server, "-tls1_1 -cipher DEFAULT@SECLEVEL=0")
      assert.is_nil(info)
      assert.matches("^handshake: .*protocol version", err)
      assert.is_false(tls.is_verify_error(err))
    end)

    it("refuses a server without TLS 1.2 and 1.3", function()
      local info, err = try_connect(pki.server, "-no_tls1_2 -no_tls1_3 -cipher DEFAULT@SECLEVEL=0")
      assert.is_nil(info)
      assert.matches("protocol version", err)
    end)

    it("speaks TLS 1.2 to a TLS 1.2 server (control)", function()
      local info = assert(try_connect(pki.server, "-tls1_2"))
      assert.equal("TLSv1.2", info.version)
    end)
  end)

  describe("the client offers AEAD ciphers with forward secrecy only", function()
    it("refuses a server with only a CBC suite", function()
      local info, err = try_connect(pki.server_rsa, "-tls1_2 -cipher ECDHE-RSA-AES128-SHA")
      assert.is_nil(info)
      assert.matches("^handshake: .*handshake failure", err)
    end)

    it("refuses a server with only a CBC-SHA256 suite", function()
      assert.is_nil((try_connect(pki.server_rsa, "-tls1_2 -cipher ECDHE-RSA-AES128-SHA256")))
    end)

    it("refuses a server with only static RSA key exchange (no forward secrecy)", function()
      assert.is_nil((try_connect(pki.server_rsa, "-tls1_2 -cipher AES128-GCM-SHA256")))
    end)

    it("keeps refusing them when a ciphers list names them: a list can only narrow", function()
      local wide = { ca_file = pki.ca.cert, ciphers = "ALL:@SECLEVEL=0" }
      assert.is_nil((try_connect(pki.server_rsa, "-tls1_2 -cipher ECDHE-RSA-AES128-SHA", wide)))
      wide.ciphers = "ALL:@SECLEVEL=0"
      assert.is_nil((try_connect(pki.server_rsa, "-tls1_2 -cipher AES128-GCM-SHA256", wide)))
      -- a list of nothing but weak suites is refused when the config is made
      local cfg, err = tls.config{ ciphers = "ECDHE-RSA-AES128-SHA:AES128-SHA" }
      assert.is_nil(cfg)
      assert.matches("^ciphers: .*leaves no AEAD suite with forward secrecy", err)
      cfg, err = tls.config{ ciphers = "legacy" }
      assert.is_nil(cfg)
      assert.matches("^ciphers: 'legacy' is libtls's alias for weak suites", err)
      -- and the narrowed list still speaks what it names (control)
      local info = assert(try_connect(pki.server_rsa, "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256",
        { ca_file = pki.ca.cert, ciphers = "ALL:@SECLEVEL=0" }))
      assert.equal("ECDHE-RSA-AES128-GCM-SHA256", info.cipher)
    end)

    it("accepts ECDHE with AES-GCM and with ChaCha20-Poly1305 (control)", function()
      local info = assert(try_connect(pki.server_rsa, "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256"))
      assert.equal("ECDHE-RSA-AES128-GCM-SHA256", info.cipher)
      info = assert(try_connect(pki.server_rsa, "-tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305"))
      assert.equal("ECDHE-RSA-CHACHA20-POLY1305", info.cipher)
    end)
  end)

  describe("the server accepts TLS 1.2 and 1.3 with AEAD and forward secrecy only", function()
    local listener, port
    setup(function()
      listener = assert(tls.listen("127.0.0.1", 0,
        { cert_file = pki.server_rsa.cert, key_file = pki.server_rsa.key }))
      port = select(2, listener:getsockname())
    end)
    teardown(function() listener:close() end)

    -- an openssl s_client with these arguments against our listener
    local function client(args)
      local c = peers.s_client(port, args, "hello\n")
      local conn, err = listener:accept(10)
      local line
      if conn then
        line = conn:receive("*l")
        conn:close()
      end
      c.wait()
      return line, err
    end

    it("refuses a TLS 1.1 client", function()
      local line, err = client("-tls1_1 -cipher DEFAULT@SECLEVEL=0")
      assert.is_nil(line)
      assert.matches("^handshake: .*" .. libtls.detail("old_protocol"), err)
    end)

    it("refuses a client offering only static RSA", function()
      local line, err = client("-tls1_2 -cipher AES128-SHA")
      assert.is_nil(line)
      assert.matches("no shared cipher", err)
    end)

    it("refuses a client offering only a CBC suite", function()
      local line, err = client("-tls1_2 -cipher ECDHE-RSA-AES128-SHA")
      assert.is_nil(line)
      assert.matches("no shared cipher", err)
    end)

    it("serves a TLS 1.2 client with ECDHE and AES-GCM, and a TLS 1.3 client (control)", function()
      assert.equal("hello", (client("-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256")))
      assert.equal("hello", (client("-tls1_3")))
    end)
  end)

  describe("the client verifies the chain and the name", function()
    it("rejects a wrong host name", function()
      local info, err = try_connect(pki.alt, "")
      assert.is_nil(info)
      assert.is_true(tls.is_verify_error(err))
      assert.matches("^verify: name `localhost' not present in server certificate", err)
    end)

    it("rejects an expired certificate", function()
      local info, err = try_connect(pki.expired, "")
      assert.is_nil(info)
      assert.is_true(tls.is_verify_error(err))
      assert.matches("certificate has expired", err)
    end)

    it("rejects a self-signed certificate", function()
      local info, err = try_connect(pki.self, "")
      assert.is_nil(info)
      assert.is_true(tls.is_verify_error(err))
      assert.matches(libtls.detail("self_signed"), err)
    end)

    it("rejects a certificate from an untrusted root", function()
      local info, err = try_connect(pki.untrusted, "")
      assert.is_nil(info)
      assert.is_true(tls.is_verify_error(err))
      assert.matches("unable to get local issuer certificate", err)
    end)

    it("accepts the right name from the trusted root (control)", function()
      assert.truthy(try_connect(pki.server, ""))
    end)

    it("tells verification failures from other failures", function()
      assert.is_true(tls.is_verify_error("verify: certificate has expired"))
      assert.is_false(tls.is_verify_error("handshake: handshake failed"))
      assert.is_false(tls.is_verify_error("timeout"))
      assert.is_false(tls.is_verify_error(nil))
    end)
  end)

  describe("the system trust store is the default", function()
    it("builds a config without any CA option", function()
      assert.truthy(tls.config{})
    end)

    it("does not trust the test root, which is not in the system store", function()
      local info, err = try_connect(pki.server, "", {})
      assert.is_nil(info)
      assert.matches("^verify: .*unable to get local issuer certificate", err)
    end)

    it("trusts a root found in a hashed directory given as ca_path", function()
      local dir = pki.dir .. "/hashed"
      os.execute("mkdir -p " .. dir .. " && cp " .. pki.ca.cert .. " " .. dir
        .. "/ && openssl rehash " .. dir .. " 2>/dev/null")
      assert.truthy(try_connect(pki.server, "", { ca_path = dir }))
    end)

    -- Bind-mount a hashed directory holding only the test root over
    -- /etc/ssl/certs, in a private mount namespace (nothing else on the machine
    -- sees it), and connect with no CA option: only a default that reads the
    -- directory /etc/ssl/certs can trust the test root; the bundle files
    -- (ca-certificates.crt, /etc/ssl/cert.pem) never held it.
    local can_unshare = os.execute("unshare -m true 2>/dev/null")
    local it_ns = can_unshare and it or pending
    it_ns("reads /etc/ssl/certs as a hashed directory (needs unshare -m, i.e. root)", function()
      local dir = pki.dir .. "/fake-system-certs"
      os.execute("mkdir -p " .. dir .. " && cp " .. pki.ca.cert .. " " .. dir
        .. "/ && openssl rehash " .. dir .. " 2>/dev/null")
      local srv = peers.s_server(pki.server)
      local code = ([[
        local tls = require "tls"
        local conn, err = tls.connect("localhost", %d, { timeout = 10 })
        print(conn and ("trusted " .. conn:peer().subject) or err)
      ]]):format(srv.port)
      local file = os.tmpname()
      local f = assert(io.open(file, "w"))
      f:write(code)
      f:close()
      local out = require("support.proc").run(("unshare -m sh -c %s"):format(peers.quote(
        "mount --bind " .. dir .. " /etc/ssl/certs && exec " .. require("support.proc").lua .. " " .. file)))
      os.remove(file)
      srv.stop()
      assert.matches("trusted .*CN=localhost", out)
    end)
  end)
end)
