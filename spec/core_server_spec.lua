-- The server: tls.listen and listener:accept, mutual TLS, SNI with several
-- keypairs, and ALPN. The listener runs in this process; the clients are
-- openssl s_client and curl (or this module, against its own echo server).
local tls = require "tls"
local libtls = require "support.libtls"
local pki = require "support.pki"
local peers = require "support.peers"
local proc = require "support.proc"

describe("tls server", function()
  setup(function() pki.setup() end)
  teardown(function() pki.cleanup() end)
  after_each(peers.run_deferred)

  -- A listener on a free port with opts, and a way to run one s_client
  -- against it: returns the accepted conn (or nil, err) and what the client
  -- printed. `serve(conn)` runs before the conn is closed.
  local function listen(opts)
    opts.cert_file = opts.cert_file or pki.server.cert
    opts.key_file = opts.key_file or pki.server.key
    local l = assert(tls.listen("127.0.0.1", 0, opts))
    local port = select(2, l:getsockname())
    local function client(args, input, serve)
      local c = peers.s_client(port, "-CAfile " .. pki.ca.cert .. " " .. (args or ""), input or "hello\n")
      local conn, err = l:accept(10)
      local result
      if conn then
        result = serve and serve(conn)
        conn:close()
      end
      return conn, err, c.wait(), result
    end
    return l, port, client
  end

  describe("listener", function()
    it("accepts a client with the handshake done", function()
      local l, _, client = listen({})
      local conn, err, out, line = client("", "hello\n", function(conn)
        assert.equal("TLSv1.3", conn:info().version)
        assert.is_nil(conn:peer())   -- the client sent no certificate
        return conn:receive("*l")
      end)
      l:close()
      assert.truthy(conn, err)
      assert.equal("hello", line)
      assert.matches("Verify return code: 0 %(ok%)", out)
    end)

    it("returns nil and an error for one bad client and keeps serving", function()
      local l, _, client = listen({})
      local conn, err = client("-tls1_1 -cipher DEFAULT@SECLEVEL=0")
      assert.is_nil(conn)
      assert.matches("^handshake: .*%(client 127%.0%.0%.1 port %d+%)$", err)
      local _, _, _, line = client("", "still here\n", function(c) return c:receive() end)
      assert.equal("still here", line)
      l:close()
    end)

    it("returns nil, \"timeout\" when nobody comes", function()
      local l = listen({})
      local conn, err = l:accept(0.1)
      assert.is_nil(conn)
      assert.equal("timeout", err)
      l:close()
    end)

    it("reports a port already in use, leaking no descriptor", function()
      local busy = assert(tls.listen("127.0.0.1", 0, { cert_file = pki.server.cert,
        key_file = pki.server.key }))
      local port = select(2, busy:getsockname())
      local before = proc.fds()
      local l, err = tls.listen("127.0.0.1", port, { cert_file = pki.server.cert,
        key_file = pki.server.key })
      local after = proc.fds()
      busy:close()
      assert.is_nil(l)
      assert.equal("listen: cannot listen on 127.0.0.1 port " .. port .. ": Address already in use", err)
      assert.equal(before, after)
    end)

    it("reports a host that does not resolve", function()
      local l, err = tls.listen("no-such-host.invalid", 0, { cert_file = pki.server.cert,
        key_file = pki.server.key })
      assert.is_nil(l)
      assert.matches("^listen: cannot resolve no%-such%-host%.invalid: .+", err)
    end)

    it("has a descriptor and closes", function()
      local l = listen({})
      assert.is_true(l:getfd() >= 0)
      assert.matches("^tls%.listener", tostring(l))
      l:close()
      assert.equal(-1, l:getfd())
    end)

    it("serves curl", function()
      local l, port = listen({})
      local c = proc.start(("curl -sS --max-time 5 --cacert %s https://localhost:%d/hello"):format(pki.ca.cert, port))
      local conn = assert(l:accept(10))
      local request = conn:receive("*l")
      repeat local line = conn:receive("*l") until line == "" or line == nil
      conn:send("HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n")
      conn:close()
      l:close()
      local out = c.wait()
      assert.equal("GET /hello HTTP/1.1", request)
      assert.equal("hello\n", out)
    end)
  end)

  describe("mutual TLS", function()
    local client_opts
    before_each(function()
      client_opts = ("-cert %s -key %s"):format(pki.client.cert, pki.client.key)
    end)

    it("verify_client = true rejects a client without a certificate", function()
      local l, _, client = listen({ verify_client = true, ca_file = pki.ca.cert })
      local conn, err = client("")
      l:close()
      assert.is_nil(conn)
      assert.is_true(tls.is_verify_error(err))
      assert.matches("peer did not return a certificate", err)
    end)

    it("verify_client = true rejects a client certificate from an untrusted root", function()
      local l, _, client = listen({ verify_client = true, ca_file = pki.other_ca.cert })
      local conn, err = client(client_opts)
      l:close()
      assert.is_nil(conn)
      assert.is_true(tls.is_verify_error(err))
      assert.matches("certificate verify failed", err)
    end)

    it("verify_client = true accepts a client with a certificate, and peer() names it", function()
      local l, _, client = listen({ verify_client = true, ca_file = pki.ca.cert })
      local conn, err, _, peer = client(client_opts, "hi\n", function(c) return c:peer() end)
      l:close()
      assert.truthy(conn, err)
      assert.matches("CN=client.test$", peer.subject)
      assert.matches("CN=lua%-tls%-test%-root$", peer.issuer)
    end)

    it("verify_client = \"optional\" accepts a client without a certificate; peer() is nil", function()
      local l, _, client = listen({ verify_client = "optional", ca_file = pki.ca.cert })
      local conn, err, _, peer = client("", "hi\n", function(c) return c:peer() or "none" end)
      assert.truthy(conn, err)
      assert.equal("none", peer)
      -- and a client that has one is still seen
      local _, _, _, subject = client(client_opts, "hi\n", function(c) return c:peer().subject end)
      l:close()
      assert.matches("CN=client.test$", subject)
    end)

    it("the module's client presents cert_file and key_file", function()
      local echo = peers.echo(pki.server, ("{ verify_client = true, ca_file = %q }"):format(pki.ca.cert))
      peers.defer(echo.stop)
      local conn = assert(tls.connect("localhost", echo.port, { ca_file = pki.ca.cert, timeout = 10,
        cert_file = pki.client.cert, key_file = pki.client.key }))
      conn:send("info\n")
      assert.matches("peer=.*CN=client.test", conn:receive())
      conn:close()
      -- TLS 1.3: a client without a certificate learns of the refusal on its
      -- first read, from the server's alert
      local bare = assert(tls.connect("localhost", echo.port, { ca_file = pki.ca.cert, timeout = 10 }))
      bare:send("info\n")
      local line, err = bare:receive()
      bare:close()
      assert.is_nil(line)
      assert.matches("^receive: .*alert certificate required", err)
    end)
  end)

  describe("SNI with two keypairs", function()
    local keypairs
    before_each(function()
      keypairs = {
        { cert_file = pki.server.cert, key_file = pki.server.key },
        { cert_file = pki.alt.cert, key_file = pki.alt.key },
      }
    end)

    it("the server picks the keypair by the client's server name", function()
      local l, _, client = listen({ keypairs = keypairs })
      local _, _, out, sni = client("-servername alt.test", "x\n", function(c) return c:info().servername end)
      assert.equal("alt.test", sni)
      assert.matches("subject=CN = alt.test", out, 1, true)
      _, _, out, sni = client("-servername localhost", "x\n", function(c) return c:info().servername end)
      l:close()
      assert.equal("localhost", sni)
      assert.matches("subject=CN = localhost", out, 1, true)
    end)

    it("the first keypair serves clients that send no name", function()
      local l, _, client = listen({ keypairs = keypairs })
      local _, _, out = client("-noservername")
      l:close()
      assert.matches("subject=CN = localhost", out, 1, true)
    end)

    it("the module's client gets the certificate for its servername", function()
      local echo = peers.echo(pki.server, ("{ keypairs = {{ cert_file = %q, key_file = %q }} }")
        :format(pki.alt.cert, pki.alt.key))
      peers.defer(echo.stop)
      for _, name in ipairs{ "alt.test", "localhost" } do
        local conn = assert(tls.connect("127.0.0.1", echo.port,
          { ca_file = pki.ca.cert, servername = name, timeout = 10 }))
        assert.matches("CN=" .. name:gsub("%.", "%%.") .. "$", conn:peer().subject)
        conn:close()
      end
    end)
  end)

  describe("ALPN", function()
    it("the server picks its protocol from the client's list", function()
      local l, _, client = listen({ alpn = { "http/1.1" } })
      local _, _, out, alpn = client("-alpn h2,http/1.1", "x\n", function(c) return c:info().alpn end)
      l:close()
      assert.equal("http/1.1", alpn)
      assert.matches("ALPN protocol: http/1.1", out, 1, true)
    end)

    it("the module's client and server agree on the common protocol", function()
      local echo = peers.echo(pki.server, '{ alpn = { "http/1.1" } }')
      peers.defer(echo.stop)
      local conn = assert(tls.connect("localhost", echo.port,
        { ca_file = pki.ca.cert, alpn = { "h2", "http/1.1" }, timeout = 10 }))
      assert.equal("http/1.1", conn:info().alpn)
      conn:send("info\n")
      assert.matches("alpn=http/1.1", conn:receive(), 1, true)
      conn:close()
    end)

    -- RFC 7301 makes it fatal; LibreSSL's server follows it, LibreTLS
    -- (OpenSSL) continues without ALPN
    it("no common protocol: LibreTLS leaves alpn unset, LibreSSL's server refuses", function()
      local echo = peers.echo(pki.server, '{ alpn = { "http/1.1" } }')
      peers.defer(echo.stop)
      local conn, err = tls.connect("localhost", echo.port,
        { ca_file = pki.ca.cert, alpn = { "h2" }, timeout = 10 })
      if libtls.libressl then
        assert.is_nil(conn)
        assert.matches("^handshake: .*no application protocol", err)
      else
        assert(conn, err)
        assert.is_nil(conn:info().alpn)
        conn:close()
      end
    end)

    it("rejects a malformed protocol list", function()
      assert.error_matches(function() tls.config{ alpn = { "" } } end,
        "tls.config: alpn[1] must be a protocol name of 1 to 255 bytes without commas", 1, true)
      local ok, err = pcall(tls.config, { alpn = { "a,b" } })
      assert.is_false(ok)
      assert.matches("alpn%[1%]", err)
    end)
  end)
end)
