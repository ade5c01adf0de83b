-- tls.cqueues: conns and engines inside cqueues coroutines. Every path runs
-- in a real controller against real peers; every error a coroutine raises is
-- collected, and none may be Lua's "attempt to yield across a C-call
-- boundary" (the C core never yields; all waiting is in the adapter's Lua).
local tls = require "tls"
local pki = require "support.pki"
local cq_run = require("support.cq").run
local proc = require "support.proc"
local cqueues = require "cqueues"
local csocket = require "cqueues.socket"
local socket = require "socket"
local tcq = require "tls.cqueues"
local peers = require "support.peers"

local BOUNDARY = "C%-call boundary"
local loop_errors = {}

-- Run the coroutines fns in one controller until all finish (at most
-- `limit` seconds); returns the errors they raised.
local function run(limit, ...)
  local errs = cq_run(limit or 20, ...)
  for _, err in ipairs(errs) do loop_errors[#loop_errors + 1] = err end
  return errs
end

-- A listener for the test server on a free loopback port, and the port.
local function listen()
  local l = assert(tls.listen("127.0.0.1", 0,
    { cert_file = pki.server.cert, key_file = pki.server.key, timeout = 5 }))
  local _, port = l:getsockname()
  return l, port
end

-- tcq.connect to the test server on `port` (inside a coroutine).
local function client(port, timeout)
  return tcq.connect("127.0.0.1", port, { ca_file = pki.ca.cert, servername = "localhost",
    timeout = timeout or 10 })
end

-- Echo lines back upper-cased until the client closes.
local function echo(c)
  while true do
    local line, err = c:receive("*l")
    if not line then return err end
    assert(c:send(line:upper() .. "\n"))
  end
end

describe("tls.cqueues", function()
  setup(function() pki.setup() end)
  teardown(function()
    pki.cleanup()
    -- the grep-able proof: `make check-yield` looks for this line
    print(("\ntls.cqueues: %d coroutine errors collected, %d mention a C-call boundary")
      :format(#loop_errors, #(function()
        local t = {}
        for _, e in ipairs(loop_errors) do if e:find(BOUNDARY) then t[#t + 1] = e end end
        return t
      end)()))
  end)

  it("is reachable as tls.cqueues", function()
    assert.equal(tcq, tls.cqueues)
  end)

  it("serves many engine clients (tcq.connect) from socket conns (tcq.accept) at once", function()
    local l, port = listen()
    local results, n = {}, 20
    local cq_fns = {
      function()
        for _ = 1, n do
          local c, err = tcq.accept(l, 10)
          assert(c, err)
          cqueues.running():wrap(function()
            echo(c)
            c:close()
          end)
        end
      end,
    }
    for i = 1, n do
      cq_fns[#cq_fns + 1] = function()
        local c = assert(client(port))
        for k = 1, 3 do
          assert(c:send(("client %d request %d\n"):format(i, k)))
          local r, e = c:receive("*l")
          results[#results + 1] = r or ("client %d: %s"):format(i, e)
        end
        c:close()
      end
    end
    local errs = run(30, (table.unpack or unpack)(cq_fns))
    l:close()
    assert.same({}, errs)
    local expected = {}
    for i = 1, n do
      for k = 1, 3 do expected[#expected + 1] = ("CLIENT %d REQUEST %d"):format(i, k) end
    end
    table.sort(expected)
    table.sort(results)
    assert.same(expected, results)
  end)

  it("moves 1 MiB each way intact, with send and receive yielding on full buffers", function()
    local l, port = listen()
    local block = {}
    for i = 1, 65536 do block[i] = string.char((i * 7 + math.floor(i / 256)) % 256) end
    local big = string.rep(table.concat(block), 16)  -- 1 MiB
    local echoed
    local errs = run(30, function()
      local c = assert(tcq.accept(l, 10))
      local data = assert(c:receive(#big))
      assert(c:send(data))
      c:close()
    end, function()
      local c = assert(client(port))
      -- the peer reads only once we stop writing, so this must yield mid-send
      assert(c:send(big))
      echoed = c:receive(#big)
      c:close()
    end)
    l:close()
    assert.same({}, errs)
    assert.truthy(echoed == big)
  end)

  it("wraps a client socket conn (tls.wrap) and a server engine over a cqueues socket", function()
    local srv = assert(csocket.listen("127.0.0.1", 0))
    local _, _, port = srv:localname()
    local got
    local errs = run(20, function()
      local sock = assert(srv:accept(10))
      local e = assert(tls.engine { mode = "server", cert_file = pki.server.cert,
        key_file = pki.server.key })
      local c = tcq.wrap(e, { socket = sock, timeout = 10 })
      assert(c:handshake())
      assert.equal("localhost", c:info().servername)
      echo(c)
      c:close()
    end, function()
      local s = assert(socket.connect("127.0.0.1", port))
      local conn = assert(tls.wrap(s, { ca_file = pki.ca.cert, servername = "localhost" }))
      local c = tcq.wrap(conn, { timeout = 10 })
      assert(c:handshake())
      assert(c:send("over a wrapped socket conn\n"))
      got = c:receive("*l")
      assert.equal("localhost", c:peer().subject:match("CN=([%w.]+)"))
      c:close()
    end)
    srv:close()
    assert.same({}, errs)
    assert.equal("OVER A WRAPPED SOCKET CONN", got)
  end)

  it("serves openssl s_client through tcq.accept_raw", function()
    local l, port = listen()
    local out = os.tmpname()
    os.execute(("(printf 'from s_client\\n'; sleep 1) 2>/dev/null | timeout 10 openssl s_client "
      .. "-connect 127.0.0.1:%d -CAfile %s -verify_return_error -quiet > %s 2>&1 &")
      :format(port, pki.ca.cert, out))
    local errs = run(20, function()
      local c = assert(tcq.accept_raw(l, 10))
      assert.matches("handshaking", tostring(c))
      assert(c:handshake(10))
      assert.equal("from s_client", c:receive("*l"))
      assert(c:send("from cqueues\n"))
      c:close()
    end)
    l:close()
    assert.same({}, errs)
    local text = ""
    for _ = 1, 50 do
      local f = io.open(out, "rb")
      text = f:read("*a")
      f:close()
      if text:find("from cqueues", 1, true) then break end
      proc.sleep(0.1)
    end
    os.remove(out)
    assert.matches("from cqueues", text)
  end)

  describe("a socket conn is pollable: pollfd(), events(), timeout()", function()
    -- a server that reads nothing until half a second has passed, then reads
    -- one line (however long), waits a moment and answers
    local slow
    setup(function()
      slow = peers.scripted(pki.server, [[return function(conn)
        os.execute("sleep 0.5")
        conn:setmaxline(1024 * 1024 * 1024)  -- the line is as long as the socket buffers
        local line = conn:receive("*l")
        os.execute("sleep 0.3")
        conn:send("got " .. #line .. "\n")
        conn:receive("*a")
      end]])
    end)
    teardown(function() slow.stop() end)

    local function connect()
      return assert(tls.connect("localhost", slow.port, { ca_file = pki.ca.cert, timeout = 10 }))
    end

    it("pollfd() is the conn's descriptor", function()
      local conn = connect()
      assert.equal(conn:getfd(), conn:pollfd())
      conn:close()
    end)

    it("timeout() is the settimeout value, nil when blocking or non-blocking", function()
      local conn = connect()
      conn:settimeout(2.5)
      assert.equal(2.5, conn:timeout())
      conn:settimeout(0)      -- a poll deadline of 0 would spin the loop
      assert.is_nil(conn:timeout())
      conn:settimeout(nil)
      assert.is_nil(conn:timeout())
      conn:settimeout(0.25)
      assert.equal(0.25, conn:timeout())
      conn:close()
    end)

    it("events() follows the last want, and cqueues.poll(conn) returns it once ready", function()
      local conn = connect()
      conn:settimeout(0)
      -- fill the socket while the peer is not reading, until send wants to write
      local chunk = string.rep("x", 64 * 1024)
      local sent, n, err, last = 0, nil, nil, nil
      for _ = 1, 2000 do
        n, err, last = conn:send(chunk)
        if not n then break end
        sent = sent + #chunk
      end
      assert.is_nil(n)
      assert.equal("wantwrite", err)
      assert.equal("w", conn:events())
      local pending = chunk:sub(last + 1)
      sent = sent + last
      local steps = { }
      local errs = run(20, function()
        -- writable once the peer starts reading: poll hands back the conn
        while #pending > 0 do
          assert.equal(conn, cqueues.poll(conn, 10))
          steps[#steps + 1] = "w"
          local i, e, l = conn:send(pending)
          if i then
            sent, pending = sent + #pending, ""
          else
            assert.equal("wantwrite", e)
            sent, pending = sent + l, pending:sub(l + 1)
          end
        end
        -- the line ends here; the answer comes 0.3 s after the peer read it
        local i, e = conn:send("\n")
        while not i do
          assert.equal("wantwrite", e)
          assert.equal(conn, cqueues.poll(conn, 10))
          i, e = conn:send("\n")
        end
        local line, partial
        line, e, partial = conn:receive("*l")
        assert.is_nil(line)
        assert.equal("wantread", e)
        assert.equal("r", conn:events())
        for _ = 1, 20 do  -- more than one record may come (session tickets)
          assert.equal(conn, cqueues.poll(conn, 10))
          steps[#steps + 1] = "r"
          line, e, partial = conn:receive("*l", partial)
          if line or e ~= "wantread" then break end
          assert.equal("r", conn:events())
        end
        assert.equal("got " .. sent, line)
      end)
      conn:close()
      assert.same({}, errs)
      assert.equal("w", steps[1])
      assert.equal("r", steps[#steps])
    end)
  end)

  describe("timeouts, per operation", function()
    it("times out a receive while other coroutines keep running", function()
      local l, port = listen()
      local ticks, during, result = 0, nil, nil
      local errs = run(20, function()
        local c = assert(tcq.accept(l, 10))
        while not result do cqueues.sleep(0.05) end  -- says nothing while the client waits
        c:close()
      end, function()
        local c = assert(client(port))
        c:settimeout(0.3)
        local t0 = ticks
        result = { c:receive("*l") }
        during = ticks - t0
        c:close()
      end, function()
        while not result do cqueues.sleep(0.05); ticks = ticks + 1 end
      end)
      l:close()
      assert.same({}, errs)
      assert.same({ nil, "timeout", "" }, result)
      -- about 6 ticks fit in 0.3 s; a receive that blocked the thread lets none run
      assert.is_true(during >= 2, ("the other coroutine ran %d times during the receive"):format(during))
    end)

    it("times out a handshake against a server that never answers", function()
      local srv = assert(socket.bind("127.0.0.1", 0))  -- accepts in the kernel, says nothing
      local _, port = srv:getsockname()
      local result
      local errs = run(20, function()
        result = { client(port, 0.3) }
      end)
      srv:close()
      assert.same({}, errs)
      assert.same({ nil, "timeout" }, result)
    end)

    it("gives accept a timeout when nobody comes", function()
      local l = listen()
      local result
      local errs = run(10, function() result = { tcq.accept(l, 0.2) } end)
      l:close()
      assert.same({}, errs)
      assert.same({ nil, "timeout" }, result)
    end)

    it("fails one bad client in tcq.accept and keeps serving", function()
      local l, port = listen()
      local first, second
      local errs = run(20, function()
        first = { tcq.accept(l, 10) }
        local c = assert(tcq.accept(l, 10))
        second = c:receive("*l")
        c:close()
      end, function()
        local s = assert(csocket.connect("127.0.0.1", port))
        assert(s:connect(5))
        s:xwrite("GET / HTTP/1.0\r\n\r\n", "bn")
        cqueues.sleep(0.2)
        s:close()
        local c = assert(client(port))
        assert(c:send("still serving\n"))
        c:close()
      end)
      l:close()
      assert.same({}, errs)
      assert.equal(nil, first[1])
      assert.matches("^handshake: .*%(client 127%.0%.0%.1 port %d+%)$", first[2])
      assert.equal("still serving", second)
    end)
  end)

  it("closes the conn (and its socket) when a policy raises in tcq.connect", function()
    local srv = peers.s_server(pki.server, "")
    local fds = proc.fds_now  -- (no collection first: nothing may be left to the collector)
    -- 5.1 has no "isrunning": there the collector runs unless a spec stopped it
    local has_isrunning, running = pcall(collectgarbage, "isrunning")
    running = not has_isrunning or running
    collectgarbage("stop")  -- nothing is left to the collector
    finally(function() if running then collectgarbage("restart") end end)
    local before, after, result
    local errs = run(20, function()
      before = fds()
      -- tcq.pcall: a pcall the connect's I/O can yield through, on Lua 5.1 too
      result = { tcq.pcall(tcq.connect, "127.0.0.1", srv.port, { ca_file = pki.ca.cert,
        servername = "localhost", timeout = 10, policy = function() error("the policy broke") end }) }
      after = fds()
    end)
    srv.stop()
    assert.same({}, errs)
    assert.is_false(result[1])
    assert.matches("the policy broke", result[2], 1, true)
    assert.equal(before, after)
  end)

  describe("misuse gives a clear error", function()
    it("refuses a second coroutine on a busy connection", function()
      local l, port = listen()
      local errs = run(20, function()
        local c = assert(tcq.accept(l, 10))
        cqueues.sleep(0.5)
        c:close()
      end, function()
        local c = assert(client(port, 5))
        local cq = cqueues.running()
        cq:wrap(function() c:receive("*l") end)  -- waits: the server is silent
        cqueues.sleep(0.1)
        local ok, err = pcall(c.receive, c, "*l")
        assert.equal(false, ok)
        assert.matches("tls.cqueues: receive: this connection is already in use by another "
          .. "coroutine %(it is waiting in receive%)", err)
      end)
      l:close()
      assert.same({}, errs)
    end)

    -- only coroutine.isyieldable (5.3+, LuaJIT) can tell; 5.1 and 5.2 give Lua's own error
    ;(coroutine.isyieldable and it or pending)("says why it cannot wait inside a C function, instead of a C-call boundary error", function()
      local l, port = listen()
      local err
      local errs = run(20, function()
        local c = assert(tcq.accept(l, 10))
        cqueues.sleep(0.3)
        c:close()
      end, function()
        local c = assert(client(port, 5))
        -- a gsub callback is C calling Lua: no yield can cross it
        local ok, e = pcall(string.gsub, "x", "x", function() return c:receive("*l") end)
        assert.equal(false, ok)
        err = e
        c:close()
      end)
      l:close()
      assert.same({}, errs)
      assert.matches("tls.cqueues: cannot wait for I/O here", err)
      assert.not_matches(BOUNDARY, err)
    end)

    it("checks wrap's arguments", function()
      assert.error_matches(function() tcq.wrap({}) end,
        "tls.cqueues.wrap: expected a tls conn or engine, got table")
      local e = assert(tls.engine { mode = "client", ca_file = pki.ca.cert, servername = "localhost" })
      assert.has_error(function() tcq.wrap(e) end,
        "tls.cqueues.wrap: an engine needs option 'socket', a connected cqueues socket, got nil")
      assert.has_error(function() tcq.wrap(e, { sockett = 1 }) end,
        "tls.cqueues.wrap: unknown option 'sockett'")
      local raw, srv = socket.bind("127.0.0.1", 0), nil
      local _, port = raw:getsockname()
      srv = assert(socket.connect("127.0.0.1", port))
      local conn = assert(tls.wrap(srv, { ca_file = pki.ca.cert, servername = "localhost" }))
      assert.has_error(function() tcq.wrap(conn, { socket = {} }) end,
        "tls.cqueues.wrap: option 'socket' is for engines; this conn has its own socket")
      conn:close()
      raw:close()
    end)

    it("settimeout/gettimeout: the per-operation timeout, negative meaning none", function()
      local e = assert(tls.engine { mode = "client", ca_file = pki.ca.cert, servername = "localhost" })
      local sock = csocket.pair()
      local c = tcq.wrap(e, { socket = sock, timeout = 3 })
      assert.equal(3, c:gettimeout())
      assert.is_true(c:settimeout(0.5))
      assert.equal(0.5, c:gettimeout())
      c:settimeout(-1)
      assert.is_nil(c:gettimeout())
      assert.error_matches(function() c:settimeout("5") end,
        "settimeout: timeout must be a number of seconds, got string")
      c:close()
    end)

    it("sets up an engine's cqueues socket as tls.over does (a record in one send(2))", function()
      local e = assert(tls.engine { mode = "client", ca_file = pki.ca.cert, servername = "localhost" })
      local sock, other = csocket.pair()
      local _, before = sock:setbufsiz()
      local c = tcq.wrap(e, { socket = sock })
      local bufin, bufout = sock:setbufsiz()  -- (no arguments: reads them)
      c:close()
      other:close()
      assert.is_true(before < 16406, before)  -- cqueues' default splits a record
      assert.is_true(bufout >= 16645 and bufin >= 16645, bufout .. " " .. bufin)
    end)

    it("returns connect's error for a refused TCP connect", function()
      local srv = assert(socket.bind("127.0.0.1", 0))
      local _, port = srv:getsockname()
      srv:close()                                   -- nobody listens there now
      local result
      local errs = run(10, function()
        -- an integral float port (5.3+'s 8443.0) is that port, as on 5.1
        result = { tcq.connect("127.0.0.1", port + 0.0, { ca_file = pki.ca.cert, timeout = 5 }) }
      end)
      assert.same({}, errs)
      assert.is_nil(result[1])
      assert.matches("^connect: .*[Rr]efused", result[2])
    end)

    it("wakes a waiting reader with closed when another coroutine closes the conn", function()
      local l, port = listen()
      -- connection 1: the server closes its socket conn under its reader;
      -- connection 2: the client closes its engine under its reader
      local result, engine_result
      local errs = run(20, function()
        local c1 = assert(tcq.accept(l, 10))
        local c2 = assert(tcq.accept(l, 10))
        cqueues.running():wrap(function() result = { c1:receive("*l") } end)
        cqueues.sleep(0.1)
        c1:close()
        cqueues.sleep(0.5)
        c2:close()
      end, function()
        local c1 = assert(client(port, 5))
        local c2 = assert(client(port, 5))
        cqueues.running():wrap(function() engine_result = { c2:receive(10) } end)
        cqueues.sleep(0.1)
        c2:close()
        cqueues.sleep(0.5)
        c1:close()
      end)
      l:close()
      assert.same({}, errs)
      assert.same({ nil, "closed", "" }, result)
      assert.same({ nil, "closed", "" }, engine_result)
    end)
  end)

  it("never reports a yield across a C-call boundary on any path above", function()
    for _, e in ipairs(loop_errors) do assert.not_matches(BOUNDARY, e) end
  end)
end)
