-- Bad clients get a clear error for themselves only: accept returns nil and
-- the reason, nothing leaks, and the next real client is served.

local tls = require "tls"
local libtls = require "support.libtls"
local socket = require "socket"
local kit = require "support.server_kit"

local P

describe("server with bad clients", function()
  local listener, port
  lazy_setup(function()
    P = kit.setup()
    port = kit.proc.free_port()
    listener = assert(tls.listen("127.0.0.1", port, {
      cert_file = P.server.cert, key_file = P.server.key, handshake_timeout = 1 }))
  end)
  lazy_teardown(function()
    listener:close()
    kit.teardown()
  end)

  -- After each bad client, a real one (curl) must be served.
  local function still_serving()
    local out, body = kit.serve(listener,
      ("curl -sS --http1.1 --cacert %s https://localhost:%d/"):format(P.ca, port),
      function(conn) kit.http_reply(conn, "served\n"); return "accepted" end)
    assert.equal("accepted", body)
    assert.equal("served\n", out)
  end

  local function raw_client(bytes)
    local s = assert(socket.connect("127.0.0.1", port))
    if bytes then assert(s:send(bytes)) end
    return s
  end

  it("garbage bytes: a handshake error for that client", function()
    local s = raw_client(("\0\1\2garbage\255"):rep(20))
    local conn, err = listener:accept(5)
    s:close()
    assert.is_nil(conn)
    assert.matches("^handshake", err)
    assert.matches("client 127.0.0.1", err, 1, true)
    still_serving()
  end)

  it("plain HTTP on the TLS port: an error that says so", function()
    local s = raw_client("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    local conn, err = listener:accept(5)
    s:close()
    assert.is_nil(conn)
    assert.matches("^handshake: the peer speaks plain HTTP, not TLS %(", err)
    still_serving()
  end)

  it("a client that stops midway through the handshake times out alone", function()
    -- a TLS record header announcing a 512-byte ClientHello, then 4 bytes of it
    local s = raw_client("\22\3\1\2\0\1\0\1\252")
    local conn, err = listener:accept(5)
    assert.is_nil(conn)
    assert.matches("^timeout", err)
    still_serving()
    s:close()
  end)

  it("a client that says nothing and leaves: 'closed'", function()
    local s = raw_client()
    s:close()
    local conn, err = listener:accept(5)
    assert.is_nil(conn)
    assert.matches("closed", err)
    still_serving()
  end)

  it("a client that offers only TLS 1.1 is refused", function()
    local out, conn, err = kit.serve(listener,
      ("openssl s_client -connect 127.0.0.1:%d -tls1_1"):format(port), function() return true end)
    assert.is_nil(conn)
    assert.matches("^handshake: .*" .. libtls.detail("old_protocol"), err)
    assert.not_matches("CONNECTED.*Cipher is ECDHE", out)
    still_serving()
  end)

  it("many bad clients leak no descriptors", function()
    local before = kit.proc.fds()
    for i = 1, 20 do
      local s = raw_client(i % 2 == 0 and "GET / HTTP/1.0\r\n\r\n" or "\22\3\1\0\5hello")
      local conn = listener:accept(5)
      assert.is_nil(conn)
      s:close()
    end
    assert.equal(before, kit.proc.fds())
    still_serving()
  end)
end)
