-- Hostile clients against the module's server over real loopback sockets:
-- listener:accept() fails for that one client with a clear error and keeps
-- serving; a wrapped server conn reports the error and holds no descriptor
-- after close.
local tls = require "tls"
local libtls = require "support.libtls"
local socket = require "socket"
local pki = require "support.pki"
local E = require "support.engines"
local H = require "support.hostile"
local proc = require "support.proc"

describe("hostile clients against the server", function()
  local scfg, ccfg, listener, port
  setup(function()
    scfg, ccfg = E.configs()
    listener = assert(tls.listen("127.0.0.1", 0, { config = scfg, handshake_timeout = 1 }))
    port = select(2, listener:getsockname())
  end)
  teardown(function()
    listener:close()
    pki.cleanup()
  end)

  local function raw_client()
    local s = socket.tcp()
    s:settimeout(5)
    assert(s:connect("127.0.0.1", port))
    return s
  end

  -- What accept() says about a client that behaved badly; the client's
  -- connection must be closed by the server afterwards.
  local function accept_fails(raw)
    local conn, err = listener:accept(5)
    assert.is_nil(conn)
    assert.is_string(err)
    assert.matches("%(client 127%.0%.0%.1 port %d+%)$", err)
    -- the server closed its end: the raw client reads to the end of stream
    raw:settimeout(5)
    local _, rerr = raw:receive("*a")
    assert.is_not.equal("timeout", rerr)
    raw:close()
    return err
  end

  it("a client sending garbage fails alone", function()
    local raw = raw_client()
    assert(raw:send(("\0garbage\255"):rep(100)))
    assert.matches("^handshake: ", accept_fails(raw))
  end)

  it("a client sending a record over 16 KiB + 2048 gets an alert", function()
    local raw = raw_client()
    assert(raw:send(H.record_header(22, H.OVERSIZED) .. ("\1"):rep(1000)))
    local conn, err = listener:accept(5)
    assert.is_nil(conn)
    assert.matches("^handshake: .*" .. libtls.detail("record_overflow"), err)
    assert.equal("\21", H.read_some(raw, 5):sub(1, 1))  -- a fatal alert record
    raw:close()
  end)

  it("a plain-HTTP request is refused with an error that says so", function()
    local raw = raw_client()
    assert(raw:send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"))
    assert.matches("^handshake: the peer speaks plain HTTP, not TLS %(", accept_fails(raw))
  end)

  it("a client that stops midway through the handshake times out alone", function()
    local raw = raw_client()
    local hello = H.client_hello(ccfg)
    assert(raw:send(hello:sub(1, 40)))
    local conn, err = listener:accept(5)
    assert.is_nil(conn)
    assert.matches("^timeout", err)
    raw:close()
  end)

  it("a client that sends its ClientHello and then goes silent times out alone", function()
    local raw = raw_client()
    assert(raw:send(H.client_hello(ccfg)))
    local conn, err = listener:accept(5)
    assert.is_nil(conn)
    assert.matches("^timeout", err)
    raw:close()
  end)

  it("a client that resets the connection mid-handshake fails alone", function()
    local raw = raw_client()
    assert(raw:send(H.client_hello(ccfg)))
    H.reset(raw)
    local conn, err = listener:accept(5)
    assert.is_nil(conn)
    assert.matches("^handshake: ", err)
    assert.matches("reset", err:lower())
  end)

  it("a client that connects and closes at once fails alone", function()
    raw_client():close()
    local conn, err = listener:accept(5)
    assert.is_nil(conn)
    assert.matches("^handshake: ", err)
  end)

  it("keeps serving real clients after all of the above", function()
    collectgarbage()
    local fds = proc.fds()
    local client = io.popen(("openssl s_client -connect 127.0.0.1:%d -CAfile %s "
      .. "-servername localhost -verify_return_error -brief </dev/null 2>&1"):format(port, pki.ca.cert))
    local conn, err = listener:accept(10)
    assert(conn, err)
    assert.equal("TLSv1.3", conn:info().version)
    conn:close()
    local out = client:read("*a")
    client:close()
    assert.matches("Verification: OK", out)
    collectgarbage()
    assert.equal(fds, proc.fds())
  end)

  describe("on a wrapped server conn", function()
    local function wrapped()
      local raw, srv = H.tcp_pair()
      local conn = assert(tls.wrap(srv, { mode = "server", config = scfg, timeout = 2 }))
      return raw, conn
    end

    it("data after the client's close_notify is never delivered", function()
      local raw, conn = wrapped()
      local c = assert(tls.engine{ config = ccfg, servername = "localhost" })
      assert(H.pump_raw(c, raw, conn))
      conn:settimeout(2)
      assert(c:send("hello\n"))
      local first = c:drain()
      assert.is_true(c:close())
      assert(raw:send(first .. c:drain() .. first .. "garbage after close_notify"))
      assert.equal("hello", conn:receive())
      local data, err = conn:receive()
      assert.is_nil(data)
      assert.equal("closed", err)
      data, err = conn:receive()
      assert.is_nil(data)
      assert.equal("closed", err)
      assert.is_true(conn:close())
      raw:close()
    end)

    it("a reset after the handshake reads as truncated, writes as closed, and never raises SIGPIPE", function()
      local raw, conn = wrapped()
      local c = assert(tls.engine{ config = ccfg, servername = "localhost" })
      assert(H.pump_raw(c, raw, conn))
      conn:settimeout(2)
      H.reset(raw)
      local data, err = conn:receive()
      assert.is_nil(data)
      assert.equal("truncated", err)
      local n, serr
      for _ = 1, 10 do  -- the first writes may still land in the socket buffer
        n, serr = conn:send(("x"):rep(65536))
        if not n then break end
      end
      assert.is_nil(n)
      assert.equal("closed", serr)
      assert.is_true(conn:close())
    end)
  end)
end)
