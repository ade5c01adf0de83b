-- tls.over: the engine run over a host's transport. Real peers on loopback
-- (openssl s_server/s_client, the module's own servers), over LuaSocket and
-- over cqueues sockets, client and server side. No assertion depends on
-- timing: every wait that must time out waits for something that never
-- comes until the spec sends it.
local tls = require "tls"
local pki = require "support.pki"
local cq_run = require("support.cq").run
local peers = require "support.peers"
local socket = require "socket"
local cqueues = require "cqueues"
local csocket = require "cqueues.socket"

local function luasocket_to(port)
  return assert(socket.connect("127.0.0.1", port))
end

local function client_over(port, opts)
  local o = { servername = "localhost", ca_file = pki.ca.cert, timeout = 10 }
  for k, v in pairs(opts or {}) do o[k] = v end
  local c = assert(tls.over(tls.transport.socket(luasocket_to(port)), o))
  peers.defer(function() c:close() end)  -- s_server serves one client at a time
  return c
end

-- Run the coroutines fns in one cqueues controller; returns their errors.
local function run(...) return cq_run(60, ...) end

-- A transport that records what went through it, around another one.
local function recording(t)
  local rec = { writes = {}, closed = false }
  function rec.read(_, max) return t:read(max) end
  function rec.write(_, data) rec.writes[#rec.writes + 1] = data; return t:write(data) end
  function rec.close() rec.closed = true; return t:close() end
  function rec.settimeout(_, s) return t:settimeout(s) end
  function rec.now() return t:now() end
  return rec
end

describe("tls.over", function()
  setup(function() pki.setup() end)
  teardown(function() pki.cleanup() end)
  after_each(peers.run_deferred)

  describe("over LuaSocket (tls.transport.socket)", function()
    local srv
    setup(function() srv = peers.s_server(pki.server) end)
    teardown(function() srv.stop() end)

    it("handshakes with openssl s_server and exchanges lines", function()
      local c = client_over(srv.port)
      assert.is_true(c:handshake())
      assert.equal(6, c:send("hello\n"))
      assert.equal("olleh", c:receive("*l"))
      assert.equal(9, c:send("xxabcdef\n", 3))
      assert.equal("fedcba\n", c:receive("*L"))
      assert.equal(3, c:send("wxyz\n", 2, 3))  -- "xy"
      assert.equal(1, c:send("\n"))
      assert.equal("yx", c:receive("*l"))
      local info = c:info()
      assert.matches("^TLSv1%.[23]$", info.version)
      assert.matches("localhost", c:peer().subject)
      assert.is_false(c:dirty())
      assert.is_true(c:close())
      assert.is_true(c:close())
      assert.same({ nil, "closed" }, { c:receive("*l") })
    end)

    it("reads a byte count, with and without a prefix, across records", function()
      local echo = peers.echo(pki.server)
      peers.defer(echo.stop)
      local c = client_over(echo.port)
      local data = peers.random(40000)
      assert(c:send("bulk 40000\n" .. data))
      assert.equal(data:sub(1, 1), c:receive(1))
      assert.is_true(c:receive(30001, "pre") == "pre" .. data:sub(2, 29999))
      assert.is_true(c:receive(10001) == data:sub(30000))
      assert(c:send("line one\n"))
      assert.equal("line one", c:receive())
    end)

    it("reports a certificate that does not verify as a verify: error", function()
      local c = client_over(srv.port, { ca_file = pki.other_ca.cert })
      local ok, err = c:handshake()
      assert.is_nil(ok)
      assert.is_true(tls.is_verify_error(err), err)
      c:close()
    end)

    it("reports a wrong name as a verify: error", function()
      local c = client_over(srv.port, { servername = "alt.test" })
      local ok, err = c:handshake()
      assert.is_nil(ok)
      assert.is_true(tls.is_verify_error(err), err)
      c:close()
    end)

    it("runs a policy given in opts, and refuses the peer before any data", function()
      local ctx_seen
      local c = client_over(srv.port, { policy = function(_, ctx)
        ctx_seen = ctx
        return nil, "not this one"
      end })
      local n, err = c:send("hello\n")
      assert.is_nil(n)
      assert.equal("policy: not this one", err)
      assert.equal("client", ctx_seen.mode)
      assert.equal("localhost", ctx_seen.servername)
      c:close()
    end)

    it("applies the default policy (a leaf without subjectAltName is refused)", function()
      local cn_only = peers.s_server(pki.cn_only)
      peers.defer(cn_only.stop)
      local c = client_over(cn_only.port)
      local ok, err = c:handshake()
      assert.is_nil(ok)
      assert.is_true(tls.is_policy_error(err), err)
      assert.matches("require_san", err)
      c:close()
      -- and policy = false turns it off, as for every other conn
      c = client_over(cn_only.port, { policy = false })
      assert.is_true(c:handshake())
      c:close()
    end)

    it("sends close_notify on close and closes the transport", function()
      local rec = recording(tls.transport.socket(luasocket_to(srv.port)))
      local c = assert(tls.over(rec, { servername = "localhost", ca_file = pki.ca.cert,
        timeout = 10 }))
      assert(c:handshake())
      local before = #rec.writes
      c:close()
      assert.equal(before + 1, #rec.writes)
      assert.is_true(rec.closed)
    end)
  end)

  describe("over LuaSocket against the module's own server", function()
    it("receives 4 MB with *a intact", function()
      local body = peers.random(4 * 1024 * 1024)
      local f = assert(io.open(pki.dir .. "/body.bin", "wb"))
      f:write(body)
      f:close()
      local srv = peers.scripted(pki.server, ([[return function(conn)
        conn:receive("*l")
        local f = assert(io.open(%q, "rb"))
        assert(conn:send(f:read("*a")))
        f:close()
      end]]):format(pki.dir .. "/body.bin"))
      peers.defer(srv.stop)
      local c = client_over(srv.port)
      assert(c:send("go\n"))
      local got, err = c:receive("*a")
      assert.is_nil(err)
      assert.equal(#body, #got)
      assert.is_true(got == body)
      c:close()
    end)

    it("times out per operation, keeps the partial data, and stays usable", function()
      -- the server sends "abc" without a newline, then waits for "go"
      local srv = peers.scripted(pki.server, [[return function(conn)
        conn:send("abc")
        assert(conn:receive("*l") == "go")
        conn:send("def\n")
        conn:receive("*l")
      end]])
      peers.defer(srv.stop)
      local c = client_over(srv.port, { timeout = 0.3 })
      local line, err, partial = c:receive("*l")
      assert.is_nil(line)
      assert.equal("timeout", err)
      assert.equal("abc", partial)
      c:settimeout(10)
      assert(c:send("go\n"))
      assert.equal("abcdef", c:receive("*l", partial))
      c:close()
    end)

    it("bounds a handshake by the timeout given to handshake(), not the conn's", function()
      -- a listener that never accepts: TCP connects, the handshake never finishes
      local stall = assert(socket.bind("127.0.0.1", 0))
      peers.defer(function() stall:close() end)
      local _, port = stall:getsockname()
      local c = client_over(port, { timeout = 60 })
      assert.same({ nil, "timeout" }, { c:handshake(0.3) })
      c:close()
    end)

    it("reports the peer's close as closed, with what came before", function()
      local srv = peers.scripted(pki.server, [[return function(conn)
        conn:send("partial line")
      end]])
      peers.defer(srv.stop)
      local c = client_over(srv.port)
      local line, err, partial = c:receive("*l")
      assert.is_nil(line)
      assert.equal("closed", err)
      assert.equal("partial line", partial)
      c:close()
    end)

    -- probe until the echo's answer is there (probe: false once data arrived)
    local function probe_until_data(c)
      for _ = 1, 1000 do
        if not c:probe() then return end
        socket.sleep(0.01)
      end
      error("the echo server's answer never arrived")
    end

    it("keeps the byte a probe read for the next receive, whatever the pattern", function()
      local echo = peers.echo(pki.server)
      peers.defer(echo.stop)
      local c = client_over(echo.port)
      assert.is_true(c:handshake())
      assert.is_true(c:probe())
      assert(c:send("hello\n"))
      probe_until_data(c)
      assert.is_true(c:dirty())
      assert.is_false(c:probe())
      assert.equal("hello", c:receive("*l"))
      -- the byte held is the line's end
      assert(c:send("bulk 1\n\n"))
      probe_until_data(c)
      assert.equal("", c:receive("*l"))
      assert(c:send("bulk 3\n\nab"))
      probe_until_data(c)
      assert.equal("\n", c:receive("*L"))
      assert.equal("", c:receive(0))
      assert.equal("ab", c:receive(2))
      -- a byte count and a prefix
      assert(c:send("bulk 3\nxyz"))
      probe_until_data(c)
      assert.equal("pre" .. "x", c:receive(4, "pre"))
      assert.equal("yz", c:receive(2))
      assert(c:send("bulk 1\nq"))
      probe_until_data(c)
      assert.equal("q", c:receive(1))
      assert.is_false(c:dirty())
      assert.is_true(c:probe())
    end)

    it("passes a conn whose transport cannot bound a read (no settimeout) without reading", function()
      local echo = peers.echo(pki.server)
      peers.defer(echo.stop)
      local sock = luasocket_to(echo.port)
      sock:settimeout(5)   -- (only so that a read the probe should not make ends)
      local t, reads = tls.transport.socket(sock), 0
      local bare = {
        read = function(_, max) reads = reads + 1; return t:read(max) end,
        write = function(_, data) return t:write(data) end,
        close = function() return t:close() end,
      }
      local c = assert(tls.over(bare, { servername = "localhost", ca_file = pki.ca.cert }))
      peers.defer(function() c:close() end)
      assert.is_true(c:handshake())
      local before = reads
      assert.is_true(c:probe())
      assert.equal(before, reads)
      assert(c:send("hello\n"))
      assert.equal("hello", c:receive("*l"))
    end)
  end)

  describe("over cqueues (tls.transport.cqueues)", function()
    -- a cqueues listener on a free loopback port
    local function listen()
      local l = assert(csocket.listen { host = "127.0.0.1", port = 0 })
      assert(l:listen())
      local _, _, port = l:localname()
      return l, port
    end

    local function server_over(sock, timeout)
      return assert(tls.over(tls.transport.cqueues(sock), { mode = "server",
        cert_file = pki.server.cert, key_file = pki.server.key, timeout = timeout or 10 }))
    end

    local function client_cq(port, timeout)
      local sock = assert(csocket.connect { host = "127.0.0.1", port = port })
      return assert(tls.over(tls.transport.cqueues(sock), { servername = "localhost",
        ca_file = pki.ca.cert, timeout = timeout or 10 }))
    end

    it("runs a server and a client in one controller (each waits by yielding)", function()
      local l, port = listen()
      local got, served
      local errs = run(function()
        local s = server_over(assert(l:accept()))
        assert(s:handshake())
        local line = assert(s:receive("*l"))
        assert(s:send(line:upper() .. "\n"))
        served = s:receive("*l")  -- the client's close_notify
        s:close()
      end, function()
        local c = client_cq(port)
        assert(c:send("hello over\n"))
        got = c:receive("*l")
        c:close()
      end)
      l:close()
      assert.same({}, errs)
      assert.equal("HELLO OVER", got)
      assert.is_nil(served)
    end)

    it("serves openssl s_client as a server", function()
      local l, port = listen()
      local client = peers.s_client(port, "-quiet -CAfile " .. pki.ca.cert
        .. " -servername localhost -verify_return_error", "from s_client\n")
      peers.defer(client.stop)
      local line
      local errs = run(function()
        local s = server_over(assert(l:accept()))
        line = s:receive("*l")
        s:send("bye\n")
        s:close()
      end)
      l:close()
      assert.same({}, errs)
      assert.equal("from s_client", line)
      assert.matches("bye", client.wait())
    end)

    it("lets other coroutines run while a conn waits, and times out on its own deadline",
      function()
        local l, port = listen()
        local ticks, result, held = 0, nil, nil
        local errs = run(function()
          held = server_over(assert(l:accept()))
          assert(held:handshake())
          -- sends nothing until the client has timed out
          while not result do cqueues.sleep(0.05) end
          held:close()
        end, function()
          local c = client_cq(port, 0.5)
          assert(c:handshake())
          local t0 = ticks
          local line, err = c:receive("*l")
          result = { line, err, ticks - t0 }
          c:close()
        end, function()
          while not result do cqueues.sleep(0.05); ticks = ticks + 1 end
        end)
        l:close()
        assert.same({}, errs)
        assert.is_nil(result[1])
        assert.equal("timeout", result[2])
        assert.is_true(result[3] > 0)
      end)

    it("raises when a second coroutine uses a conn another one is waiting in", function()
      local l, port = listen()
      local c, shaken, second_err, waiter
      local errs = run(function()
        local s = server_over(assert(l:accept()))
        assert(s:handshake())
        while not second_err do cqueues.sleep(0.05) end
        s:send("done\n")
        s:close()
      end, function()
        c = client_cq(port)
        assert(c:handshake())
        -- no yield between here and the wait inside receive
        shaken = true
        waiter = c:receive("*l")
      end, function()
        -- busy during the handshake too: wait for the receive
        while not (shaken and c._busy) do cqueues.sleep(0.02) end
        local ok, err = pcall(c.receive, c, "*l")
        second_err = ok and "no error" or err
      end)
      l:close()
      c:close()
      assert.same({}, errs)
      assert.matches("tls.over: receive: this connection is already in use by another "
        .. "coroutine %(it is waiting in receive%)", second_err)
      assert.equal("done", waiter)
    end)

    it("wakes a coroutine waiting in a conn that another coroutine closes", function()
      local l, port = listen()
      local c, shaken, result
      local errs = run(function()
        local s = server_over(assert(l:accept()))
        assert(s:handshake())
        while not result do cqueues.sleep(0.05) end
        s:close()
      end, function()
        c = client_cq(port)
        assert(c:handshake())
        shaken = true
        result = { c:receive("*l") }
      end, function()
        while not (shaken and c._busy) do cqueues.sleep(0.02) end
        c:close()
      end)
      l:close()
      assert.same({}, errs)
      assert.same({ nil, "closed", "" }, result)
    end)

    it("takes over a socket the user has read from: bytes it had buffered are not lost",
      function()
        -- a line in the clear (a PROXY header, STARTTLS), then TLS at once:
        -- the client's first write carries both, so the server's line read
        -- buffers the start of the ClientHello in the cqueues socket
        local l, port = listen()
        local got, line, buffered
        local errs = run(function()
          local sock = assert(l:accept())
          sock:setmode("t", "t")
          sock:setbufsiz(512, 512)
          line = sock:read("*l")
          buffered = sock:pending()  -- (the ClientHello's bytes, or some of them)
          local s = server_over(sock)
          assert(s:handshake())
          got = s:receive("*l")
          s:close()
        end, function()
          local sock = assert(csocket.connect { host = "127.0.0.1", port = port })
          local t, first = tls.transport.cqueues(sock), true
          local wrapped = setmetatable({
            write = function(_, data)
              if first then data, first = "HELLO clear\r\n" .. data, false end
              return t:write(data)
            end,
          }, { __index = function(_, k)
            return function(_, ...) return t[k](t, ...) end
          end })
          local c = assert(tls.over(wrapped, { servername = "localhost",
            ca_file = pki.ca.cert, timeout = 10 }))
          assert(c:send("over tls\n"))
          c:receive("*l")
          c:close()
        end)
        l:close()
        assert.same({}, errs)
        assert.equal("HELLO clear", line)
        assert.is_true(buffered > 0, "nothing was buffered: the case tests nothing")
        assert.equal("over tls", got)
      end)

    it("gives the socket buffers of a whole record (one send(2) per record, not three)",
      function()
        local a, b = assert(csocket.pair())
        local before_in, before_out = a:setbufsiz()
        tls.transport.cqueues(a)
        local bufin, bufout = a:setbufsiz()  -- (no arguments: reads them)
        a:close()
        b:close()
        -- cqueues' default would split a 16 KiB record: the test means something
        assert.is_true(before_out < 16384 + 22, before_out)
        -- a TLS 1.3 record of 16 KiB of data is 16406 bytes on the wire, at most 16645
        assert.is_true(bufout >= 16645, bufout)
        assert.is_true(bufin >= 16645, bufin)
        assert.is_true(before_in <= bufin)
      end)
  end)

  describe("misuse", function()
    it("raises on a missing transport or a bad option, naming tls.over", function()
      assert.has_error(function() tls.over(nil, {}) end,
        "tls.over: expected a transport with read, write and close methods "
        .. "(tls.transport.ngx(sock), tls.transport.cqueues(sock), ...), got nil")
      local t = { read = function() end, write = function() end, close = function() end }
      assert.has_error(function() tls.over(t, { mode = "both" }) end,
        "tls.over: option 'mode' must be \"client\" or \"server\", got both")
      assert.has_error(function() tls.over(t, { timeout = "5" }) end,
        "tls.over: timeout must be a number of seconds or nil, got string")
      assert.has_error(function() tls.over(t, { timeout = 0 / 0 }) end,
        "tls.over: timeout must be a number of seconds or nil, got NaN")
      assert.has_error(function() tls.over(t, "x") end, "tls.over: options must be a table, got string")
    end)

    it("returns an error for a verifying client without a servername", function()
      local t = { read = function() end, write = function() end, close = function() end }
      assert.same({ nil, "connect: server name not specified" },
        { tls.over(t, { ca_file = pki.ca.cert }) })
    end)

    it("raises on a bad receive pattern before touching the transport", function()
      local t = { read = function() error("read called") end, write = function() end,
        close = function() end }
      local c = assert(tls.over(t, { servername = "localhost" }))
      assert.error_matches(function() c:receive("*x") end,
        "bad argument #1 to 'receive' (invalid receive pattern", 1, true)
      assert.error_matches(function() c:receive(-1) end,
        "bad argument #1 to 'receive' (byte count must be a non-negative integer)", 1, true)
      assert.error_matches(function() c:send({}) end,
        "bad argument #1 to 'send' (string expected, got table)", 1, true)
    end)

    it("names the ready transports and refuses others", function()
      assert.equal("function", type(tls.transport.socket))
      assert.has_error(function() return tls.transport.nope end,
        "tls.transport: no transport named 'nope' (there are ngx, haproxy, cqueues and socket)")
      assert.has_error(function() tls.transport.ngx({}) end,
        "tls.transport.ngx: runs only inside nginx's lua module (no ngx here)")
      assert.has_error(function() tls.transport.haproxy({}) end,
        "tls.transport.haproxy: runs only inside HAProxy's Lua (no core here)")
      assert.has_error(function() tls.transport.socket(42) end,
        "tls.transport.socket: expected a connected LuaSocket tcp object, got 42")
    end)
  end)
end)
