-- The module's client against other servers with the features the server
-- side offers: gnutls-serv (gnutls-bin) and openssl s_server.

local tls = require "tls"
local kit = require "support.server_kit"
local peers = require "support.peers"
local proc = kit.proc

local P

local function gnutls_serv(args)
  local port = proc.free_port()
  local h = proc.start(("gnutls-serv --echo -p %d %s"):format(port, args), { port = port })
  h.port = port
  return h
end

local function echo_once(conn, text)
  assert.equal(#text + 1, conn:send(text .. "\n"))
  return conn:receive("*l")
end

-- A server on `port` that requires a client certificate serves a client
-- with the test one (its echo of "mtls" is `echoed`) and refuses one without:
-- with the TLS alert that says so (not a timeout or a refused connection).
local function requires_client_cert(port, echoed)
  local conn = assert(tls.connect("localhost", port, { ca_file = P.ca,
    cert_file = P.client.cert, key_file = P.client.key, timeout = 5 }))
  assert.equal(echoed, echo_once(conn, "mtls"))
  conn:close()
  local bare, err = tls.connect("localhost", port, { ca_file = P.ca, timeout = 5 })
  if bare then -- TLS 1.3: the refusal arrives after the client's handshake
    bare:send("x\n") -- may already see the alert; the receive reports it
    local line
    line, err = bare:receive("*l")
    assert.is_nil(line)
    bare:close()
  end
  assert.matches("alert certificate required", err, 1, true)
end

describe("the module's client against other servers", function()
  lazy_setup(function() P = kit.setup() end)
  lazy_teardown(function() kit.teardown() end)

  describe("gnutls-serv", function()
    it("negotiates ALPN", function()
      local srv = gnutls_serv(("--x509certfile %s --x509keyfile %s --alpn http/1.1 --alpn h2")
        :format(P.server.cert, P.server.key))
      finally(srv.stop)
      local conn = assert(tls.connect("localhost", srv.port,
        { ca_file = P.ca, alpn = { "h2", "http/1.1" }, timeout = 5 }))
      assert.is_string(conn:info().alpn)
      assert.truthy(({ h2 = true, ["http/1.1"] = true })[conn:info().alpn])
      assert.equal("hello", echo_once(conn, "hello"))
      conn:close()
    end)

    it("picks the certificate by the name the client sends", function()
      local srv = gnutls_serv(("--x509certfile %s --x509keyfile %s --x509certfile %s --x509keyfile %s")
        :format(P.server.cert, P.server.key, P.alt.cert, P.alt.key))
      finally(srv.stop)
      local conn = assert(tls.connect("127.0.0.1", srv.port,
        { ca_file = P.ca, servername = "alt.test", timeout = 5 }))
      assert.equal("/CN=alt.test", conn:peer().subject)
      conn:close()
    end)

    it("sends the client certificate it requires", function()
      local srv = gnutls_serv(("--x509certfile %s --x509keyfile %s --x509cafile %s --require-client-cert")
        :format(P.server.cert, P.server.key, P.ca))
      finally(srv.stop)
      requires_client_cert(srv.port, "mtls")
    end)

    it("checks a staple from --ocsp-response", function()
      local srv = gnutls_serv(("--x509certfile %s --x509keyfile %s --ocsp-response %s")
        :format(P.ocsp_server.cert, P.ocsp_server.key, P.staple_aia_good))
      finally(srv.stop)
      local conn = assert(tls.connect("localhost", srv.port,
        { ca_file = P.ca, ocsp_require_stapling = true, timeout = 5 }))
      assert.equal("good", conn:peer().ocsp.result)
      conn:close()
    end)
  end)

  describe("openssl s_server", function()
    it("negotiates ALPN", function()
      local srv = peers.s_server(P.server, "-alpn h2,http/1.1")
      finally(srv.stop)
      local conn = assert(tls.connect("localhost", srv.port,
        { ca_file = P.ca, alpn = { "http/1.1" }, timeout = 5 }))
      assert.equal("http/1.1", conn:info().alpn)
      conn:close()
    end)

    it("picks the certificate by the name the client sends", function()
      local srv = peers.s_server(P.server, ("-servername alt.test -cert2 %s -key2 %s")
        :format(P.alt.cert, P.alt.key))
      finally(srv.stop)
      local conn = assert(tls.connect("127.0.0.1", srv.port,
        { ca_file = P.ca, servername = "alt.test", timeout = 5 }))
      assert.equal("/CN=alt.test", conn:peer().subject)
      conn:close()
      conn = assert(tls.connect("localhost", srv.port, { ca_file = P.ca, timeout = 5 }))
      assert.equal("/CN=localhost", conn:peer().subject)
      conn:close()
    end)

    it("sends the client certificate it requires", function()
      local srv = peers.s_server(P.server, ("-Verify 2 -CAfile %s"):format(P.ca))
      finally(srv.stop)
      requires_client_cert(srv.port, "sltm")
    end)

    it("checks a staple from -status_file", function()
      local srv = peers.s_server(P.ocsp_server, "-status_file " .. P.staple_aia_good)
      finally(srv.stop)
      local conn = assert(tls.connect("localhost", srv.port,
        { ca_file = P.ca, ocsp_require_stapling = true, timeout = 5 }))
      local ocsp = conn:peer().ocsp
      assert.equal("good", ocsp.result)
      conn:close()
    end)
  end)
end)
