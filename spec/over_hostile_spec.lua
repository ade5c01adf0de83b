-- tls.over against a hostile peer and a transport that breaks its
-- contract: what each may make a conn do. Real peers on loopback (the
-- module's own servers, Python's ssl module), over LuaSocket; a transport
-- that misbehaves is the real LuaSocket transport with one method changed.
local tls = require "tls"
local pki = require "support.pki"
local peers = require "support.peers"
local socket = require "socket"

local function luasocket_to(port)
  return tls.transport.socket(assert(socket.connect("127.0.0.1", port)))
end

local function over(transport, opts)
  local o = { servername = "localhost", ca_file = pki.ca.cert, timeout = 10 }
  for k, v in pairs(opts or {}) do o[k] = v end
  local c = assert(tls.over(transport, o))
  peers.defer(function() c:close() end)  -- the module's servers serve one client at a time
  return c
end

-- The LuaSocket transport to port, with read replaced by read(t, max).
local function with_read(port, read)
  local t = luasocket_to(port)
  return {
    read = function(_, max) return read(t, max) end,
    write = function(_, data) return t:write(data) end,
    close = function() return t:close() end,
    settimeout = function(_, s) return t:settimeout(s) end,
    now = function() return t:now() end,
  }
end

describe("tls.over against a hostile peer or transport", function()
  local echo
  setup(function()
    pki.setup()
    echo = peers.echo(pki.server)
  end)
  teardown(function()
    echo.stop()
    pki.cleanup()
  end)
  after_each(peers.run_deferred)

  describe("a line that never ends", function()
    local srv
    setup(function()
      -- 4 MiB without a LF, in records: each arrives in its own round
      srv = peers.scripted(pki.server, [[return function(conn)
        local chunk = ("x"):rep(16384)
        for _ = 1, 256 do if not conn:send(chunk) then return end end
        conn:receive("*l")
      end]])
    end)
    teardown(function() srv.stop() end)

    it("stops at the conn's line limit (64 KiB), as on a socket conn", function()
      local c = over(luasocket_to(srv.port))
      local line, err, partial = c:receive("*l")
      assert.is_nil(line)
      assert.equal("receive: line longer than 65536 bytes (conn:setmaxline raises the limit)", err)
      -- what had arrived when the limit passed: at most one more read
      assert.is_true(#partial > 65536 and #partial <= 65536 + 65536, #partial)
      assert.equal(65536, c:getmaxline())
    end)

    it("stops at a limit set with setmaxline, the prefix included, for *L too", function()
      local c = over(luasocket_to(srv.port))
      c:setmaxline(20000)
      local line, err, partial = c:receive("*L", ("p"):rep(19000))
      assert.is_nil(line)
      assert.matches("^receive: line longer than 20000 bytes", err)
      assert.is_true(#partial > 20000 and #partial <= 19000 + 65536, #partial)
      assert.equal(("p"):rep(19000), partial:sub(1, 19000))
    end)
  end)

  it("counts the prefix in the line limit, also when the rest of the line fits it", function()
    local c = over(luasocket_to(echo.port))
    c:setmaxline(100)
    -- the echo server sends "bulk" bytes back as they are: 50 x then LF
    assert(c:send("bulk 51\n" .. ("x"):rep(50) .. "\n"))
    local line, err = c:receive("*l", ("y"):rep(60))
    assert.is_nil(line)
    assert.matches("^receive: line longer than 100 bytes", err)
    assert(c:send("short\n"))
    assert.equal("short", c:receive("*l"))
  end)

  describe("a transport that breaks its contract", function()
    it("raises on a read that returns an empty string, instead of spinning", function()
      local reads = 0
      local c = over(with_read(echo.port, function() reads = reads + 1; return "" end))
      local ok, err = pcall(c.handshake, c)
      assert.is_false(ok)
      assert.matches("tls.over: the transport's read returned an empty string", err)
      assert.equal(1, reads)
    end)

    it("raises on a read that returns more than it was asked for", function()
      local c = over(with_read(echo.port, function(t, max)
        local data, err = t:read(max)
        return data and data .. ("\0"):rep(max), err
      end))
      local ok, err = pcall(c.handshake, c)
      assert.is_false(ok)
      assert.matches("tls.over: the transport's read returned %d+ bytes, more than the 65536 asked for", err)
    end)

    it("raises on a read that returns something other than a string", function()
      for _, v in ipairs { 42, {}, true } do
        local c = over(with_read(echo.port, function() return v end))
        local ok, err = pcall(c.handshake, c)
        assert.is_false(ok)
        assert.matches("tls.over: the transport's read returned a " .. type(v), err)
        c:close()
      end
    end)

    it("raises on a write that reports fewer bytes than it was given (the rest would be lost)", function()
      local t = luasocket_to(echo.port)
      local c = over({
        read = function(_, max) return t:read(max) end,
        write = function(_, data) assert(t:write(data:sub(1, 10))); return 10 end,
        close = function() return t:close() end,
      })
      local ok, err = pcall(c.handshake, c)
      assert.is_false(ok)
      assert.matches("tls.over: the transport's write returned 10 for %d+ bytes", err)
      assert.same({ nil, "closed" }, { c:handshake() })
    end)

    it("reports a write error during the handshake, and the conn as closed after", function()
      local t = luasocket_to(echo.port)
      local c = over({
        read = function(_, max) return t:read(max) end,
        write = function() return nil, "wboom" end,
        close = function() return t:close() end,
      })
      assert.same({ nil, "wboom" }, { c:handshake() })
      assert.same({ nil, "closed", 0 }, { c:send("x\n") })
    end)

    it("reports a read error during the handshake, and again after", function()
      local c = over(with_read(echo.port, function() return nil, "boom" end))
      assert.same({ nil, "boom" }, { c:handshake() })
      assert.same({ nil, "boom", 0 }, { c:send("x\n") })
    end)
  end)

  it("raises on a send index that is not an integer, before the handshake too", function()
    local c = over(luasocket_to(echo.port))
    for _, i in ipairs { "x", {}, 1.5, 0 / 0 } do
      local ok, err = pcall(c.send, c, "abc\n", i)
      assert.is_false(ok)
      assert.matches("bad argument #2 to 'send' %(integer expected", err)
      ok, err = pcall(c.send, c, "abc\n", 1, i)
      assert.is_false(ok)
      assert.matches("bad argument #3 to 'send' %(integer expected", err)
    end
    -- out of range is not misuse: string.sub's rules, as on a socket conn
    assert.equal(4, c:send("abc\n", -10, 10))
    assert.equal(9, c:send("abc\n", 10, 2))
    assert.equal("abc", c:receive("*l"))
  end)

  it("refuses a NaN timeout wherever one is given; a negative one means none", function()
    local c = over(luasocket_to(echo.port))
    assert.has_error(function() c:settimeout(0 / 0) end,
      "tls.over: settimeout: timeout must be a number of seconds or nil, got NaN")
    assert.has_error(function() c:handshake(0 / 0) end,
      "tls.over: handshake: timeout must be a number of seconds or nil, got NaN")
    assert.has_error(function() c:settimeout("1") end,
      "tls.over: settimeout: timeout must be a number of seconds or nil, got string")
    assert.is_true(c:settimeout(-1))
    assert.is_nil(c:gettimeout())
    assert.is_true(c:handshake(-5))
    assert(c:send("hi\n"))
    assert.equal("hi", c:receive("*l"))
  end)

  it("takes a timeout of any size (math.huge, past 2^31 s) over LuaSocket", function()
    for _, t in ipairs { math.huge, 1e10, 1e300 } do
      local c = over(luasocket_to(echo.port), { timeout = t })
      assert(c:send("hello\n"))
      assert.equal("hello", c:receive("*l"))
      c:close()
    end
  end)

  it("refuses a peer that answers in plain HTTP or garbage, saying which", function()
    local l = assert(socket.bind("127.0.0.1", 0))
    peers.defer(function() l:close() end)
    local _, port = l:getsockname()
    for _, case in ipairs {
      { "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        "^handshake: the peer speaks plain HTTP, not TLS" },
      -- a handshake record header that claims 64 KiB, then junk
      { "\22\3\3\255\255" .. ("A"):rep(70000), "^handshake: " },
      { ("\0"):rep(100), "^handshake: " },
    } do
      local c = over(luasocket_to(port))
      local s = assert(l:accept())
      s:settimeout(10)
      s:send(case[1])
      s:close()
      local ok, err = c:handshake()
      assert.is_nil(ok)
      assert.matches(case[2], err)
      c:close()
    end
  end)

  it("never kills the process with SIGPIPE: a cqueues transport writing to a peer that is gone", function()
    -- a child with SIGPIPE at its default action (this process loaded
    -- LuaSocket, which ignores it, and children inherit that); no LuaSocket there
    local proc = require "support.proc"
    if select(2, proc.run("env --default-signal=PIPE true")) ~= 0 then
      pending("env --default-signal (coreutils 8.31 or later) is not available here")
      return
    end
    local script = os.tmpname()
    peers.defer(function() os.remove(script) end)
    pki.write(script, [[
      local tls = require "tls"
      local cqueues = require "cqueues"
      local csocket = require "cqueues.socket"
      assert(not package.loaded.socket)
      local cert, key, ca = arg[1], arg[2], arg[3]
      local l = assert(csocket.listen { host = "127.0.0.1", port = 0 })
      assert(l:listen())
      local _, _, port = l:localname()
      local cq, gone = cqueues.new(), false
      cq:wrap(function()
        local s = assert(tls.over(tls.transport.cqueues(l:accept()),
          { mode = "server", cert_file = cert, key_file = key, timeout = 10 }))
        assert(s:handshake())
        s.transport:close()  -- gone, without close_notify
        gone = true
      end)
      cq:wrap(function()
        local c = assert(tls.over(tls.transport.cqueues(csocket.connect { host = "127.0.0.1",
          port = port }), { servername = "localhost", ca_file = ca, timeout = 10 }))
        assert(c:handshake())
        while not gone do cqueues.sleep(0.01) end
        for _ = 1, 3 do print(c:send(("x"):rep(100000))) end
      end)
      assert(cq:loop())
      print("alive")]])
    local out, status = proc.run(("env --default-signal=PIPE %s %s %s %s %s"):format(proc.lua,
      script, pki.server.cert, pki.server.key, pki.ca.cert))
    assert.equal(0, status, out)
    assert.matches("nil\tclosed\t%d+\n.*alive\n$", out)
  end)

  it("never reports a write that failed mid-read as the peer's clean close", function()
    -- openssl s_server reads commands from stdin (a fifo here): "R" asks
    -- for a TLS 1.2 renegotiation, which the client answers from inside
    -- its read; that write meets a connection that is gone
    local proc = require "support.proc"
    local fifo = os.tmpname()
    os.remove(fifo)
    assert(os.execute("mkfifo " .. fifo))
    peers.defer(function() os.remove(fifo) end)
    local port = proc.free_port()
    local srv = proc.start(("openssl s_server -accept 127.0.0.1:%d -cert %s -key %s -tls1_2 0<> %s")
      :format(port, peers.quote(pki.server.cert), peers.quote(pki.server.key), fifo), { port = port })
    peers.defer(srv.stop)
    local stdin = assert(io.open(fifo, "w"))
    stdin:setvbuf("no")
    peers.defer(function() stdin:close() end)
    local t, gone = luasocket_to(port), false
    local c = over({
      read = function(_, max) return t:read(max) end,
      write = function(_, data)
        if gone then return nil, "closed" end  -- as the socket says after a reset
        return t:write(data)
      end,
      close = function() return t:close() end,
      settimeout = function(_, s) return t:settimeout(s) end,
      now = function() return t:now() end,
    })
    assert(c:handshake())
    stdin:write("first\n")
    assert.equal("first", c:receive("*l"))
    gone = true
    stdin:write("R\n")
    local all, err, partial = c:receive("*a")
    assert.is_nil(all)
    assert.equal("truncated", err)
    assert.equal("", partial)
    -- and so it stays: the conn is broken
    assert.same({ nil, "truncated", "" }, { c:receive("*a") })
  end)

  describe("an end without close_notify (Python's ssl module)", function()
    local srv
    setup(function()
      local proc = require "support.proc"
      local port = proc.free_port()
      srv = proc.start(("python3 spec/peers/tls_end_server.py %d %s %s cut"):format(port,
        peers.quote(pki.server.cert), peers.quote(pki.server.key)), { port = port })
      srv.port = port
    end)
    teardown(function() srv.stop() end)

    it("is \"truncated\" with what came, for *a, *l and a byte count", function()
      for _, pattern in ipairs { "*a", "*l", 100 } do
        local c = over(luasocket_to(srv.port))
        assert(c:send("hello\n"))
        local got = {}
        while true do
          local data, err, partial = c:receive(pattern)
          if not data then
            got[#got + 1] = partial
            assert.equal("truncated", err)
            break
          end
          got[#got + 1] = data
        end
        assert.equal("hello", table.concat(got))  -- sent back in two records
        c:close()
      end
    end)
  end)
end)
