-- Hostile servers against the module's client over real loopback sockets.
-- The "server" is a raw LuaSocket end the spec drives byte by byte; the
-- client is tls.wrap over the other end, so every step runs in one process.
local tls = require "tls"
local libtls = require "support.libtls"
local pki = require "support.pki"
local E = require "support.engines"
local H = require "support.hostile"
local proc = require "support.proc"

describe("hostile servers against the client", function()
  local scfg, ccfg
  setup(function() scfg, ccfg = E.configs() end)
  teardown(pki.cleanup)

  -- The client has sent its ClientHello (the raw server read it); `act`
  -- then plays the server, and the client's blocking handshake answers.
  local function against(act)
    local csock, raw = H.tcp_pair()
    local conn = assert(tls.wrap(csock, { config = ccfg, servername = "localhost", timeout = 0 }))
    local ok, err = conn:handshake()
    assert.is_nil(ok)
    assert.equal("wantread", err)
    local hello = H.read_some(raw, 5)
    assert.equal("\22", hello:sub(1, 1))
    act(raw, hello)
    conn:settimeout(1)
    ok, err = conn:handshake()
    assert.is_nil(ok)
    assert.is_string(err)
    -- a failed conn keeps failing, closes cleanly, and says so afterwards
    -- the failure is final, and later calls repeat it (regressions: a second
    -- handshake() reported success after a fatal alert; receive said "the
    -- policy has not run")
    if err ~= "timeout" then
      assert.same({ nil, err }, { conn:handshake() })
      assert.same({ nil, err, "" }, { conn:receive() })
      assert.same({ nil, err, 0 }, { conn:send("x") })
      assert.same({ nil, "handshake not done" }, { conn:info() })
    end
    assert.is_true(conn:close())
    assert.is_true(conn:close())
    assert.same({ nil, "closed" }, { conn:receive() })
    pcall(raw.close, raw)
    return err
  end

  it("garbage from the server is a handshake error, not a verify error", function()
    local err = against(function(raw) assert(raw:send(("\0garbage\255"):rep(100))) end)
    assert.matches("^handshake: ", err)
    assert.is_false(tls.is_verify_error(err))
  end)

  it("a record over 16 KiB + 2048 is refused", function()
    local err = against(function(raw)
      assert(raw:send(H.record_header(22, H.OVERSIZED) .. ("\2"):rep(2000)))
    end)
    assert.matches("^handshake: .*" .. libtls.detail("record_overflow"), err)
  end)

  it("a plain-HTTP answer is refused", function()
    local err = against(function(raw)
      assert(raw:send("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
    end)
    assert.matches("^handshake: the peer speaks plain HTTP, not TLS %(", err)
  end)

  it("a server that goes silent after the ClientHello gives \"timeout\"", function()
    assert.equal("timeout", against(function() end))
  end)

  it("a server that stops midway through its flight gives \"timeout\"", function()
    assert.equal("timeout", against(function(raw, hello)
      local s = assert(tls.engine{ config = scfg, mode = "server" })
      s:feed(hello)
      s:handshake()
      assert(raw:send(s:drain():sub(1, 150)))
    end))
  end)

  it("a server that closes midway through its flight is reported as such", function()
    local err = against(function(raw, hello)
      local s = assert(tls.engine{ config = scfg, mode = "server" })
      s:feed(hello)
      s:handshake()
      assert(raw:send(s:drain():sub(1, 150)))
      raw:close()
    end)
    assert.matches("^handshake: the peer closed the connection", err)
  end)

  it("a server that resets the connection is reported as such", function()
    local err = against(function(raw) H.reset(raw) end)
    assert.matches("^handshake: ", err)
    -- Linux reports the reset to whichever call comes next: a read or the
    -- client's alert write
    assert.is_truthy(err:lower():find("reset") or err:lower():find("broken pipe"), err)
  end)

  it("a fatal alert from the server is named", function()
    local err = against(function(raw) assert(raw:send("\21\3\3\0\2\2\40")) end)
    assert.matches("alert handshake failure", err)
  end)

  describe("after the handshake", function()
    local function established()
      local csock, raw = H.tcp_pair()
      local conn = assert(tls.wrap(csock, { config = ccfg, servername = "localhost" }))
      local s = assert(tls.engine{ config = scfg, mode = "server" })
      assert(H.pump_raw(s, raw, conn))
      conn:settimeout(2)
      raw:settimeout(2)
      return conn, s, raw
    end

    it("data after close_notify is never delivered", function()
      local conn, s, raw = established()
      assert(s:send("hello\n"))
      local first = s:drain()
      assert.is_true(s:close())
      assert(raw:send(first .. s:drain() .. first .. "garbage after close_notify"))
      assert.equal("hello", conn:receive())
      assert.same({ nil, "closed", "" }, { conn:receive() })
      assert.same({ nil, "closed", "" }, { conn:receive() })
      assert.is_true(conn:close())
      raw:close()
    end)

    it("a close without close_notify mid-line gives \"truncated\" with the partial data", function()
      local conn, s, raw = established()
      assert(s:send("partial line without newline"))
      assert(raw:send(s:drain()))
      raw:close()
      local data, err, partial = conn:receive("*l")
      assert.is_nil(data)
      assert.equal("truncated", err)
      assert.equal("partial line without newline", partial)
      assert.is_true(conn:close())
    end)

    it("a reset mid-stream gives \"truncated\" (a reset ends the stream without close_notify)", function()
      local conn, s, raw = established()
      assert(s:send("data the reset may discard"))
      assert(raw:send(s:drain()))
      H.reset(raw)
      local data, err = conn:receive("*l")
      assert.is_nil(data)
      assert.equal("truncated", err)
      assert.is_true(conn:close())
    end)

    it("an oversized record mid-stream is an error and the conn still closes cleanly", function()
      local conn, _, raw = established()
      assert(raw:send(H.record_header(23, H.OVERSIZED) .. ("x"):rep(4000)))
      local data, err = conn:receive()
      assert.is_nil(data)
      assert.matches("^receive: .*" .. libtls.detail("record_overflow"), err)
      assert.is_true(conn:close())
      raw:close()
    end)
  end)

  it("holds no descriptor after any of the above", function()
    against(function(raw) assert(raw:send("garbage")) end)
    collectgarbage()
    collectgarbage()
    local before = proc.fds()
    for _ = 1, 20 do
      against(function(raw) assert(raw:send("garbage")) end)
      against(function(raw) H.reset(raw) end)
    end
    collectgarbage()
    collectgarbage()
    assert.equal(before, proc.fds())
  end)
end)
