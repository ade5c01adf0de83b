-- Connection I/O with LuaSocket's conventions: receive patterns, send
-- indices, timeouts, a peer that goes away, non-blocking use, bulk data.
local tls = require "tls"
local socket = require "socket"
local pki = require "support.pki"
local peers = require "support.peers"

describe("tls conn I/O", function()
  local echo, lines, silent
  setup(function()
    pki.setup()
    echo = peers.echo(pki.server)
    -- sends three lines' worth of text, then closes with close_notify
    lines = peers.scripted(pki.server, [[return function(conn)
      conn:send("line one\r\nline two\nline three\nABCDEFGHIJ")
    end]])
    -- sends "abc" and then nothing until the client goes away
    silent = peers.scripted(pki.server, [[return function(conn)
      conn:send("abc")
      conn:receive("*a")
    end]])
  end)
  teardown(function()
    echo.stop(); lines.stop(); silent.stop()
    pki.cleanup()
  end)
  after_each(peers.run_deferred)

  local function connect(port, opts)
    opts = opts or {}
    opts.ca_file = pki.ca.cert
    opts.timeout = opts.timeout or 10
    local conn = assert(tls.connect("localhost", port, opts))
    peers.defer(function() conn:close() end)  -- even when the test fails: the servers serve one at a time
    return conn
  end

  describe("receive", function()
    it("reads lines without their end of line, \"*l\" and \"l\" alike", function()
      local conn = connect(lines.port)
      assert.equal("line one", conn:receive("*l"))   -- CR LF removed
      assert.equal("line two", conn:receive("l"))
      assert.equal("line three", conn:receive())     -- "*l" is the default
      conn:close()
    end)

    it("reads a byte count", function()
      local conn = connect(lines.port)
      assert.equal("line one\r\n", conn:receive(10))
      assert.equal("", conn:receive(0))
      conn:close()
    end)

    it("puts a prefix in front, counted in the byte count as LuaSocket does", function()
      local conn = connect(lines.port)
      assert.equal(">>line one", conn:receive("*l", ">>"))
      assert.equal("pre" .. "li", conn:receive(5, "pre"))
      conn:close()
    end)

    it("\"*a\" reads until the peer closes", function()
      local conn = connect(lines.port)
      conn:receive("*l")
      assert.equal("line two\nline three\nABCDEFGHIJ", conn:receive("*a"))
      conn:close()
    end)

    it("rejects an unknown pattern", function()
      local conn = connect(lines.port)
      assert.error_matches(function() conn:receive("*x") end,
        "bad argument #1 to 'receive' (invalid receive pattern", 1, true)
      assert.error_matches(function() conn:receive(-1) end,
        "bad argument #1 to 'receive' (byte count must not be negative)", 1, true)
      conn:close()
    end)
  end)

  describe("a line's length", function()
    -- 100 KiB without a LF, then a short line
    local long
    setup(function()
      long = peers.scripted(pki.server, [[return function(conn)
        conn:send(("x"):rep(100 * 1024) .. "\nshort\n")
        conn:receive("*a")
      end]])
    end)
    teardown(function() long.stop() end)

    it("is bounded: a line past the limit (64 KiB by default) is an error with the bytes read", function()
      local conn = connect(long.port)
      assert.equal(65536, conn:getmaxline())
      local data, err, partial = conn:receive("*l")
      assert.is_nil(data)
      assert.matches("^receive: line longer than 65536 bytes", err)
      -- no more than the limit and one record were taken in
      assert.is_true(#partial > 65536 and #partial <= 65536 + 16384, #partial)
      conn:close()
    end)

    it("counts the prefix, and setmaxline() raises the limit", function()
      local conn = connect(long.port)
      local _, err = conn:receive("*L", ("p"):rep(70000))
      assert.matches("^receive: line longer than", err)
      conn:close()
      conn = connect(long.port)
      conn:setmaxline(200 * 1024)
      assert.equal(100 * 1024, #conn:receive("*l"))
      assert.equal("short\n", conn:receive("*L"))
      assert.error_matches(function() conn:setmaxline(0) end,
        "bad argument #1 to 'setmaxline' (line limit must be between 1 byte and 1 GiB)", 1, true)
      conn:close()
    end)
  end)

  describe("a peer closing mid-stream", function()
    it("gives the partial data with nil, \"closed\"", function()
      local conn = connect(lines.port)
      assert.equal("line one\r\nline two\nline three\n", conn:receive(30))
      local data, err, partial = conn:receive("*l")
      assert.is_nil(data)
      assert.equal("closed", err)
      assert.equal("ABCDEFGHIJ", partial)
      conn:close()
    end)

    it("gives the partial data of a byte count", function()
      local conn = connect(lines.port)
      local data, err, partial = conn:receive(1000)
      assert.is_nil(data)
      assert.equal("closed", err)
      assert.equal("line one\r\nline two\nline three\nABCDEFGHIJ", partial)
      -- and "closed" again after that
      assert.same({ nil, "closed", "" }, { conn:receive() })
      conn:close()
    end)

    it("a peer that vanishes without close_notify reads as \"truncated\", with the partial data", function()
      local gone = peers.scripted(pki.server, [[return function(conn)
        conn:send("last words")
        os.exit(0)
      end]])
      peers.defer(gone.stop)
      local conn = connect(gone.port)
      local data, err, partial = conn:receive("*l")
      assert.is_nil(data)
      assert.equal("truncated", err)
      assert.equal("last words", partial)
      -- final: receive repeats it, send says the peer is gone
      assert.same({ nil, "truncated", "" }, { conn:receive() })
      assert.same({ nil, "closed", 0 }, { conn:send("x") })
      conn:close()
    end)

    it("\"*a\" against a peer that vanishes without close_notify is \"truncated\", with the data", function()
      local gone = peers.scripted(pki.server, [[return function(conn)
        conn:send("all of it")
        os.exit(0)
      end]])
      peers.defer(gone.stop)
      local conn = connect(gone.port)
      assert.same({ nil, "truncated", "all of it" }, { conn:receive("*a") })
      conn:close()
    end)
  end)

  describe("send", function()
    it("returns the index of the last byte sent", function()
      local conn = connect(echo.port)
      assert.equal(6, conn:send("hello\n"))
      assert.equal("hello", conn:receive())
      conn:close()
    end)

    it("sends data:sub(i, j), with string.sub's negative indices", function()
      local conn = connect(echo.port)
      assert.equal(6, conn:send("xxabc\nyy", 3, 6))
      assert.equal("abc", conn:receive())
      assert.equal(4, conn:send("def\n!", -5, -2))
      assert.equal("def", conn:receive())
      assert.equal(4, conn:send("ghi\n", 5))  -- nothing to send
      conn:close()
    end)

    it("returns nil, \"closed\" on a closed conn", function()
      local conn = connect(echo.port)
      conn:close()
      local n, err, last = conn:send("x")
      assert.is_nil(n)
      assert.equal("closed", err)
      assert.equal(0, last)
    end)
  end)

  describe("timeouts", function()
    it("connect returns nil, \"timeout\" against a server that says nothing", function()
      local server = assert(socket.bind("127.0.0.1", 0))  -- the kernel completes the TCP handshake
      peers.defer(function() server:close() end)
      local _, port = server:getsockname()
      local t0 = socket.gettime()
      local conn, err = tls.connect("localhost", port, { ca_file = pki.ca.cert, timeout = 0.5 })
      local took = socket.gettime() - t0
      assert.is_nil(conn)
      assert.equal("timeout", err)
      -- the 0.5 s timeout is honoured: not cut short, and not much exceeded
      assert.is_true(took >= 0.45 and took < 2, "connect took " .. took .. " s with a 0.5 s timeout")
    end)

    it("receive returns nil, \"timeout\" and the partial data", function()
      local conn = connect(silent.port)
      conn:settimeout(0.2)
      local data, err, partial = conn:receive("*l")
      assert.is_nil(data)
      assert.equal("timeout", err)
      assert.equal("abc", partial)
      data, err, partial = conn:receive(1)
      assert.is_nil(data)
      assert.equal("timeout", err)
      assert.equal("", partial)
      conn:close()
    end)

    it("settimeout(nil) or a negative value blocks again", function()
      -- each line comes 0.6 s after the last: a 0.2 s timeout left in
      -- force would give up on it
      local late = peers.scripted(pki.server, [[return function(conn)
        for _, line in ipairs { "one\n", "two\n" } do
          os.execute("sleep 0.6")
          conn:send(line)
        end
        conn:receive("*a")
      end]])
      peers.defer(late.stop)
      local conn = connect(late.port)
      conn:settimeout(0.2)
      assert.equal(0.2, conn:gettimeout())
      assert.same({ nil, "timeout", "" }, { conn:receive() })
      conn:settimeout(nil)
      assert.is_nil(conn:gettimeout())
      assert.equal("one", conn:receive())
      conn:settimeout(0.2)
      conn:settimeout(-1)
      assert.is_nil(conn:gettimeout())
      assert.equal("two", conn:receive())
      conn:close()
    end)

    it("every timeout argument refuses NaN, which would never expire", function()
      local nan = 0 / 0
      local conn = connect(echo.port)
      assert.has_error(function() conn:settimeout(nan) end,
        "bad argument #1 to 'settimeout' (timeout must be a number of seconds, got NaN)")
      assert.error_matches(function() conn:settimeout("soon") end,
        "bad argument #1 to 'settimeout' (timeout must be a number of seconds, got string)", 1, true)
      conn:close()
      local e = assert(tls.engine{ ca_file = pki.ca.cert, servername = "localhost" })
      assert.has_error(function() e:connect("127.0.0.1", tostring(echo.port), nan) end,
        "bad argument #3 to 'connect' (timeout must be a number of seconds, got NaN)")
      local l = assert(tls.listen("127.0.0.1", 0, { cert_file = pki.server.cert, key_file = pki.server.key }))
      peers.defer(function() l:close() end)
      assert.error_matches(function() l:accept(nan) end,
        "bad argument #2 to 'accept' (timeout must be a number of seconds, got NaN)", 1, true)
      -- checked now, not at the next accept
      assert.error_matches(function() l:settimeout(nan) end,
        "listener:settimeout: option 'timeout' must be a number of seconds, got NaN", 1, true)
      assert.has_error(function() l.socket:accept(l.server, nan) end,
        "bad argument #2 to 'accept' (timeout must be a number of seconds, got NaN)")
      assert.error_matches(function() tls.connect("localhost", echo.port, { timeout = nan }) end,
        "tls.connect: option 'timeout' must be a number of seconds, got NaN", 1, true)
    end)

    it("send returns nil, \"timeout\" and the last index sent when the peer does not read", function()
      local stuck = peers.scripted(pki.server, [[return function(conn)
        os.execute("sleep 10")
      end]])
      peers.defer(stuck.stop)
      local conn = connect(stuck.port)
      conn:settimeout(0.3)
      local data = string.rep("x", 32 * 1024 * 1024)
      local n, err, last = conn:send(data)
      assert.is_nil(n)
      assert.equal("timeout", err)
      assert.is_true(last > 0 and last < #data)
      conn:close()
    end)
  end)

  describe("non-blocking use", function()
    it("after settimeout(0), receive returns nil, \"wantread\" instead of blocking", function()
      local conn = connect(silent.port)
      assert.equal("abc", conn:receive(3))
      conn:settimeout(0)
      local data, err, partial = conn:receive("*l")
      assert.is_nil(data)
      assert.equal("wantread", err)
      assert.equal("", partial)
      conn:close()
    end)

    it("a handshake on a wrapped socket returns wantread/wantwrite until done", function()
      -- the echo server serves one client at a time: while `busy` holds it,
      -- our handshake cannot finish and must not block
      local busy = connect(echo.port)
      local sock = assert(socket.connect("127.0.0.1", echo.port))
      local conn = assert(tls.wrap(sock, { ca_file = pki.ca.cert, servername = "localhost", timeout = 0 }))
      peers.defer(function() conn:close() end)
      assert.same({ nil, "wantread" }, { conn:handshake() })
      busy:close()
      local deadline = socket.gettime() + 10
      while true do
        local ok, err = conn:handshake()
        if ok then break end
        assert.is_true(err == "wantread" or err == "wantwrite", err)
        local r, w = socket.select(err == "wantread" and { conn } or nil,
          err == "wantwrite" and { conn } or nil, 1)
        assert.is_true(#r + #w > 0 or socket.gettime() < deadline)
      end
      assert.equal("TLSv1.3", conn:info().version)
      -- data in non-blocking mode: send, then wait for the reply
      assert.equal(5, conn:send("ping\n"))
      local line, err, partial
      repeat
        socket.select({ conn }, nil, 1)
        line, err, partial = conn:receive("*l", partial)
      until line or err ~= "wantread"
      assert.equal("ping", line)
      conn:close()
    end)
  end)

  describe("bulk data", function()
    it("echoes 1 MiB of random bytes intact", function()
      local conn = connect(echo.port, { timeout = 20 })
      local data = peers.random(1024 * 1024)
      conn:send("bulk " .. #data .. "\n")
      assert.equal(#data, conn:send(data))
      local back = assert(conn:receive(#data))
      assert.equal(#data, #back)
      assert.is_true(back == data, "echoed bytes differ")
      conn:close()
    end)

    -- "00000001000000020000..." up to `count`: bytes out of order show.
    local function numbered(count)
      local parts = {}
      for i = 1, count do parts[i] = ("%08d"):format(i) end
      return table.concat(parts)
    end

    -- A peer that sends numbered(count) as one record per size in `sizes`
    -- (each send is one record), then the rest; returns it and the bytes.
    local function records_peer(count, sizes)
      local h = peers.scripted(pki.server, ([[return function(conn)
        local parts = {}
        for i = 1, %d do parts[i] = ("%%08d"):format(i) end
        local data, at = table.concat(parts), 1
        for _, size in ipairs { %s } do
          conn:send(data, at, at + size - 1)
          at = at + size
        end
        conn:send(data, at)
        conn:receive("*a")
      end]]):format(count, table.concat(sizes, ", ")))
      peers.defer(h.stop)
      return h, numbered(count)
    end

    -- Large counts decrypt straight into the result, and what the last
    -- record brings past the count must stay buffered, in order.
    it("byte counts that end inside a record keep the rest for the next receive", function()
      local straddle, want = records_peer(12000,
        { 1000, 16384, 300, 5000, 16384, 16384, 1, 7, 16384, 4096 })
      local conn = connect(straddle.port)
      local got, at = {}, 1
      for _, count in ipairs { 16384 + 300, 20000, 1, 16384, 17000 } do
        local piece = assert(conn:receive(count))
        assert.equal(count, #piece)
        assert.is_true(piece == want:sub(at, at + count - 1), "bytes out of order at " .. at)
        got[#got + 1] = piece
        at = at + count
      end
      assert.is_true(conn:dirty(), "the rest of the last record is buffered")
      local rest = assert(conn:receive(#want - at + 1))
      assert.is_true(table.concat(got) .. rest == want)
      conn:close()
    end)

    -- Small counts over long records refill the conn's buffer directly;
    -- records shorter than the count afterwards take the other path again.
    it("small counts read long records and then short ones in order", function()
      -- 72000 bytes: every listed record is sent whole, then 3264 more
      local mixed, want = records_peer(9000, { 16384, 16384, 16384, 100, 100, 3000, 16384 })
      local conn = connect(mixed.port)
      local got, at = {}, 1
      while at <= #want do
        local count = math.min(1000, #want - at + 1)
        local piece = assert(conn:receive(count))
        assert.is_true(piece == want:sub(at, at + count - 1), "bytes out of order at " .. at)
        got[#got + 1] = piece
        at = at + count
      end
      assert.is_true(table.concat(got) == want)
      conn:close()
    end)
  end)

  describe("the conn object", function()
    it("dirty() tells whether received data is buffered", function()
      local conn = connect(lines.port)
      assert.equal("line one", conn:receive())
      assert.is_true(conn:dirty())
      conn:receive("*a")
      assert.is_false(conn:dirty())
      conn:close()
    end)

    it("tostring says what it is", function()
      local conn = connect(echo.port)
      assert.matches("^tls%.conn %(client, established, fd %d+%)", tostring(conn))
      conn:close()
      assert.matches("^tls%.conn %(client, closed", tostring(conn))
    end)

    it("getfd() gives its descriptor, and -1 once closed", function()
      local conn = connect(echo.port)
      local fd = conn:getfd()
      assert.is_true(require("tls.compat").is_integer(fd))
      assert.is_true(fd >= 0)
      conn:close()
      assert.equal(-1, conn:getfd())
    end)

    it("close() is idempotent; other methods then say the conn is closed", function()
      local conn = connect(echo.port)
      assert.is_true(conn:close())
      assert.is_true(conn:close())
      local data, err = conn:receive()
      assert.is_nil(data)
      assert.equal("closed", err)
      assert.has_error(function() conn:info() end, "attempt to use a closed tls connection")
    end)

    -- <close> is Lua 5.4 syntax: the block is loaded as text, so this file parses on 5.1
    local close_src = (loadstring or load)("local x <close> = nil") and [[
      local connect, port = ...
      local seen
      do
        local conn <close> = connect(port)
        seen = conn
        conn:send("scoped\n")
        assert(conn:receive() == "scoped")
      end
      return seen
    ]]
    ;(close_src and it or pending)("a <close> variable closes it at the end of its scope", function()
      local seen = assert(load(close_src))(connect, echo.port)
      assert.equal(-1, seen:getfd())
      assert.matches("closed", tostring(seen))
    end)
  end)
end)
