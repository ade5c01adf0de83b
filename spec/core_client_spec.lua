-- The client: tls.connect and tls.wrap against the module's own server and
-- against openssl s_server.
local tls = require "tls"
local socket = require "socket"
local pki = require "support.pki"
local peers = require "support.peers"

describe("tls client", function()
  local echo
  peers.fixture(function(p) return peers.echo(p.server) end, function(s) echo = s end)

  describe("against the module's own server", function()
    it("connects, verifies, and exchanges lines", function()
      local conn = assert(tls.connect("localhost", echo.port, { ca_file = pki.ca.cert, timeout = 10 }))
      assert.equal(6, conn:send("hello\n"))
      assert.equal("hello", conn:receive("*l"))
      conn:close()
    end)

    it("reports what was negotiated and who the peer is", function()
      local conn = assert(tls.connect("localhost", echo.port, { ca_file = pki.ca.cert, timeout = 10 }))
      local info = conn:info()
      assert.equal("TLSv1.3", info.version)
      assert.truthy(info.cipher:find("GCM") or info.cipher:find("CHACHA20"), info.cipher)
      assert.is_true(info.cipher_strength >= 128)
      assert.equal("localhost", info.servername)
      assert.is_false(info.resumed)
      local peer = conn:peer()
      assert.matches("CN=localhost$", peer.subject)
      assert.matches("CN=lua%-tls%-test%-root$", peer.issuer)
      assert.matches("^SHA256:%x+$", peer.hash)
      assert.is_true(peer.notbefore <= os.time() and os.time() < peer.notafter)
      assert.matches("-----BEGIN CERTIFICATE-----", peer.chain_pem, 1, true)
      -- the server sees the name the client asked for
      conn:send("info\n")
      assert.matches("sni=localhost", conn:receive())
      conn:close()
    end)

    it("takes a reusable config through opts.config", function()
      local cfg = assert(tls.config{ ca_file = pki.ca.cert })
      for _ = 1, 3 do
        local conn = assert(tls.connect("localhost", echo.port, { config = cfg, timeout = 10 }))
        conn:send("x\n")
        assert.equal("x", conn:receive())
        conn:close()
      end
    end)

    it("verifies an IP address against the certificate's IP names", function()
      local conn = assert(tls.connect("127.0.0.1", echo.port, { ca_file = pki.ca.cert, timeout = 10 }))
      conn:close()
    end)

    it("connects by a different servername than the host", function()
      local conn = assert(tls.connect("127.0.0.1", echo.port,
        { ca_file = pki.ca.cert, servername = "localhost", timeout = 10 }))
      assert.equal("localhost", conn:info().servername)
      -- sent as SNI (a client sends none for an IP address of its own accord)
      conn:send("info\n")
      assert.matches("sni=localhost", conn:receive())
      conn:close()
    end)

    it("reports a refused connection without a TLS error", function()
      local port = require("support.proc").free_port()
      local conn, err = tls.connect("127.0.0.1", port, { ca_file = pki.ca.cert, timeout = 10 })
      assert.is_nil(conn)
      assert.matches("refused", err)
      assert.is_false(tls.is_verify_error(err))
    end)

    it("reports a name that does not resolve", function()
      local conn, err = tls.connect("no-such-host.invalid", 443, { timeout = 10 })
      assert.is_nil(conn)
      assert.matches("cannot resolve no-such-host.invalid", err, 1, true)
    end)
  end)

  -- A private mount namespace gets its own /etc/hosts, where one name maps
  -- to ::1 (listed first, and first in getaddrinfo's order for loopback) and
  -- to 127.0.0.1; the echo server listens on 127.0.0.1 only, so ::1 refuses
  -- and only a client that goes on to the next address connects.
  describe("a name with several addresses", function()
    local can_unshare = os.execute("unshare -m true 2>/dev/null")
    local it_ns = can_unshare and it or pending
    it_ns("falls back to the next address when the first refuses (needs unshare -m, i.e. root)", function()
      local hosts = pki.dir .. "/hosts"
      local f = assert(io.open(hosts, "w"))
      f:write("::1 fallback.test\n127.0.0.1 fallback.test\n")
      f:close()
      local code = ([[
        local socket = require "socket"
        local tls = require "tls"
        local order = {}
        for _, a in ipairs(socket.dns.getaddrinfo("fallback.test")) do order[#order + 1] = a.addr end
        print("order " .. table.concat(order, " "))
        local s = socket.tcp6()
        local ok, why = s:connect("::1", %d)
        s:close()
        print("::1 " .. tostring(ok or why))
        local conn, err = tls.connect("fallback.test", %d, { ca_file = %q,
          servername = "localhost", timeout = 10 })
        if not conn then print("failed " .. err) os.exit(1) end
        conn:send("over the second address\n")
        print("echo " .. tostring(conn:receive()))
        conn:close()
      ]]):format(echo.port, echo.port, pki.ca.cert)
      local file = os.tmpname()
      f = assert(io.open(file, "w"))
      f:write(code)
      f:close()
      local out = require("support.proc").run(("unshare -m sh -c %s"):format(peers.quote(
        "mount --bind " .. hosts .. " /etc/hosts && exec " .. require("support.proc").lua .. " " .. file)))
      os.remove(file)
      -- the refused address really comes first, so the connect below had to move on
      assert.matches("order ::1 127%.0%.0%.1", out)
      assert.matches("::1 connection refused", out)
      assert.matches("echo over the second address", out)
    end)
  end)

  describe("tls.wrap", function()
    it("takes over a connected LuaSocket tcp object", function()
      local sock = assert(socket.connect("127.0.0.1", echo.port))
      local conn = assert(tls.wrap(sock, { ca_file = pki.ca.cert, servername = "localhost", timeout = 10 }))
      assert.equal(-1, sock:getfd())   -- the conn owns the descriptor now
      assert.is_true(conn:handshake())
      conn:send("wrapped\n")
      assert.equal("wrapped", conn:receive())
      conn:close()
    end)

    it("takes over a plain descriptor", function()
      local sock = assert(socket.connect("127.0.0.1", echo.port))
      local fd = sock:getfd()
      sock:setfd(-1)
      local conn = assert(tls.wrap(fd, { ca_file = pki.ca.cert, servername = "localhost", timeout = 10 }))
      assert.equal(fd, conn:getfd())
      assert.is_true(conn:handshake())
      conn:send("fd\n")
      assert.equal("fd", conn:receive())
      conn:close()
    end)

    it("verifies the servername it is given", function()
      local sock = assert(socket.connect("127.0.0.1", echo.port))
      local conn = assert(tls.wrap(sock, { ca_file = pki.ca.cert, servername = "wrong.test", timeout = 10 }))
      local ok, err = conn:handshake()
      assert.is_nil(ok)
      assert.is_true(tls.is_verify_error(err))
      conn:close()
    end)

    it("refuses something that is not a socket, or a bad mode, saying which", function()
      assert.has_error(function() tls.wrap("socket", {}) end,
        "tls.wrap: expected a connected LuaSocket tcp object or a descriptor, got socket")
      assert.has_error(function() tls.wrap(3, { mode = "both" }) end,
        'tls.wrap: option \'mode\' must be "client" or "server", got both')
    end)

    it("needs a servername to verify, and leaves the socket alone without one", function()
      local sock = assert(socket.connect("127.0.0.1", echo.port))
      local fd = sock:getfd()
      assert.same({ nil, "connect: server name not specified" }, { tls.wrap(sock, { ca_file = pki.ca.cert }) })
      assert.equal(fd, sock:getfd())
      assert.same({ nil, "connect: server name not specified" }, { tls.engine { ca_file = pki.ca.cert } })
      sock:close()
    end)
  end)

  describe("against openssl s_server", function()
    local srv
    setup(function() srv = peers.s_server(pki.server, "-alpn http/1.1") end)
    teardown(function() srv.stop() end)

    it("connects, verifies, and exchanges data", function()
      local conn = assert(tls.connect("localhost", srv.port, { ca_file = pki.ca.cert, timeout = 10 }))
      conn:send("hello openssl\n")
      assert.equal("lssnepo olleh", conn:receive("*l"))
      assert.equal("TLSv1.3", conn:info().version)
      assert.matches("CN=localhost$", conn:peer().subject)
      conn:close()
    end)

    it("negotiates ALPN with it", function()
      local conn = assert(tls.connect("localhost", srv.port,
        { ca_file = pki.ca.cert, alpn = { "h2", "http/1.1" }, timeout = 10 }))
      assert.equal("http/1.1", conn:info().alpn)
      conn:close()
    end)

    it("connects over TLS 1.2 when asked to", function()
      local conn = assert(tls.connect("localhost", srv.port,
        { ca_file = pki.ca.cert, protocols = "tlsv1.2", timeout = 10 }))
      assert.equal("TLSv1.2", conn:info().version)
      assert.matches("^ECDHE%-", conn:info().cipher)
      conn:close()
    end)
  end)

  describe("over IPv6", function()
    local srv
    setup(function() srv = peers.s_server(pki.server, "-6", "::1") end)
    teardown(function() srv.stop() end)

    it("connects to ::1 and verifies its IP name", function()
      local conn = assert(tls.connect("::1", srv.port, { ca_file = pki.ca.cert, timeout = 10 }))
      conn:send("v6\n")
      assert.equal("6v", conn:receive())
      conn:close()
    end)
  end)
end)
