-- Hostile peers against in-memory engines, on the client and the server
-- side: whatever the peer sends, the engine answers with a clear error (or
-- "wantread" while it waits), never a crash, a raise or a hang.
local tls = require "tls"
local libtls = require "support.libtls"
local pki = require "support.pki"
local E = require "support.engines"
local H = require "support.hostile"

describe("hostile peers against an engine", function()
  local scfg, ccfg
  setup(function() scfg, ccfg = E.configs() end)
  teardown(pki.cleanup)

  local server = E.server
  local function client()
    local c = E.client()
    local ok, err = c:handshake()
    assert.is_nil(ok)
    assert.equal("wantread", err)
    assert.is_true(#c:drain() > 0)  -- the ClientHello, sent
    return c
  end

  -- A failed engine keeps failing with the same error and closes cleanly.
  local function stays_failed(e)
    local ok, err = e:handshake()
    assert.is_nil(ok)
    assert.is_string(err)
    assert.is_not.equal("wantread", err)
    assert.same({ nil, err }, { e:handshake() })
    local data, rerr = e:receive()
    assert.same({ nil, err }, { data, rerr })
    assert.same({ nil, err, 0 }, { e:send("x") })
    assert.is_true(e:close())
    assert.is_true(e:close())
    local data, rerr = e:receive()
    assert.is_nil(data)
    assert.equal("closed", rerr)
  end

  describe("on the server side, a client that", function()
    it("sends garbage gets an error", function()
      local s = server()
      assert(s:feed(("\0\1\2garbage\255"):rep(50)))
      local ok, err = s:handshake()
      assert.is_nil(ok)
      assert.matches("^handshake: ", err)
      stays_failed(s)
    end)

    it("sends a record longer than 16 KiB + 2048 gets an error and an alert", function()
      local s = server()
      assert(s:feed(H.record_header(22, H.OVERSIZED) .. ("\1"):rep(H.OVERSIZED)))
      local ok, err = s:handshake()
      assert.is_nil(ok)
      assert.matches("^handshake: .*" .. libtls.detail("record_overflow"), err)
      assert.equal("\21", s:drain():sub(1, 1))  -- a fatal alert record
      stays_failed(s)
    end)

    it("sends a plain-HTTP request gets an error that says so", function()
      local s = server()
      assert(s:feed("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"))
      local ok, err = s:handshake()
      assert.is_nil(ok)
      assert.matches("^handshake: the peer speaks plain HTTP, not TLS %(", err)
      stays_failed(s)
    end)

    it("stops midway through its ClientHello leaves the engine waiting, then ends cleanly", function()
      local s = server()
      local hello = H.client_hello(ccfg)
      assert(s:feed(hello:sub(1, math.floor(#hello / 2))))
      local ok, err = s:handshake()
      assert.is_nil(ok)
      assert.equal("wantread", err)
      assert.equal("", s:drain())
      s:feed_eof()  -- the transport under the engine saw the end
      ok, err = s:handshake()
      assert.is_nil(ok)
      assert.matches("peer closed the connection", err)
      stays_failed(s)
    end)

    it("floods input gets \"buffer full\" and nothing is taken", function()
      local s = server()
      local ok, err = s:feed(("\22"):rep(tls.core.engine_buffer_limit + 1))
      assert.is_nil(ok)
      assert.matches("^buffer full", err)
      assert.same({ 0, 0 }, { s:pending() })
    end)

    it("sends a fatal alert instead of a ClientHello gets an error", function()
      local s = server()
      assert(s:feed("\21\3\3\0\2\2\40"))
      local ok, err = s:handshake()
      assert.is_nil(ok)
      assert.matches("^handshake: ", err)
    end)
  end)

  describe("on the client side, a server that", function()
    it("sends garbage gets an error", function()
      local c = client()
      assert(c:feed(("garbage\0\255"):rep(40)))
      local ok, err = c:handshake()
      assert.is_nil(ok)
      assert.matches("^handshake: ", err)
      assert.is_false(tls.is_verify_error(err))
      stays_failed(c)
    end)

    it("sends a record longer than 16 KiB + 2048 gets an error", function()
      local c = client()
      assert(c:feed(H.record_header(22, H.OVERSIZED) .. ("\2"):rep(H.OVERSIZED)))
      local ok, err = c:handshake()
      assert.is_nil(ok)
      assert.matches("^handshake: .*" .. libtls.detail("record_overflow"), err)
      stays_failed(c)
    end)

    it("answers in plain HTTP gets an error", function()
      local c = client()
      assert(c:feed("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
      local ok, err = c:handshake()
      assert.is_nil(ok)
      assert.matches("^handshake: the peer speaks plain HTTP, not TLS %(", err)
      stays_failed(c)
    end)

    it("stops midway through its flight leaves the client waiting, then ends cleanly", function()
      local s, c = server(), E.client()
      c:handshake()
      E.move(c, s)
      s:handshake()
      local flight = s:drain()
      assert(c:feed(flight:sub(1, 100)))
      local ok, err = c:handshake()
      assert.is_nil(ok)
      assert.equal("wantread", err)
      c:feed_eof()
      ok, err = c:handshake()
      assert.is_nil(ok)
      assert.matches("peer closed the connection", err)
      stays_failed(c)
    end)

    it("sends a fatal alert gets the alert's name, and a retry never succeeds", function()
      local c = client()
      assert(c:feed("\21\3\3\0\2\2\40"))  -- handshake_failure
      local ok, err = c:handshake()
      assert.is_nil(ok)
      assert.matches("alert handshake failure", err)
      -- regression: libtls reported success on the next call, with no
      -- certificate checked
      assert.same({ nil, err }, { c:handshake() })
      assert.same({ nil, "handshake not done" }, { c:info() })
      stays_failed(c)
    end)
  end)

  describe("after the handshake", function()
    local s, c
    before_each(function()
      s, c = server(), E.client()
      assert(E.handshake(c, s))
    end)

    it("data after close_notify is never delivered", function()
      assert(s:send("hello\n"))
      local first = s:drain()
      assert(s:send("late\n"))
      local second = s:drain()
      assert.is_true(s:close())
      local notify = s:drain()
      assert.is_true(#notify > 0)
      -- after the close_notify: a replayed record and plain garbage
      assert(c:feed(first .. second .. notify .. first .. "garbage after close"))
      assert.equal("hello", c:receive())
      assert.equal("late", c:receive())
      local data, err = c:receive()
      assert.is_nil(data)
      assert.equal("closed", err)
      data, err = c:receive("*a")
      assert.equal("", data)
      assert.is_nil(err)
      assert.is_true(c:close())
    end)

    it("an oversized record on an established connection is an error, not a crash", function()
      assert(c:feed(H.record_header(23, H.OVERSIZED) .. ("x"):rep(H.OVERSIZED)))
      local data, err = c:receive()
      assert.is_nil(data)
      assert.matches("^receive: .*" .. libtls.detail("record_overflow"), err)
      local first = err
      data, err = c:receive()   -- the failure is final: it is repeated
      assert.is_nil(data)
      assert.equal(first, err)
      assert.is_true(c:close())
    end)

    it("garbage on an established connection is an error, not a crash", function()
      assert(s:feed("\23\3\3\0\20" .. ("\0"):rep(20)))  -- a record that fails to decrypt
      local data, err = s:receive()
      assert.is_nil(data)
      assert.matches("^receive: ", err)
      local n, serr = s:send("x")
      assert.is_nil(n)
      assert.is_string(serr)
      assert.is_true(s:close())
    end)

    it("a TLS 1.3 session ticket ahead of data does not stall receive", function()
      -- regression: the client returned "wantread" with records still buffered
      assert(s:send("after tickets\n"))
      E.move(s, c)
      assert.equal("after tickets", c:receive())
    end)
  end)
end)
