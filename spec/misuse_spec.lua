-- API misuse: calls after close, wrong types, double close, one conn driven
-- from two coroutines. Misuse raises an error that names what is wrong;
-- I/O on a closed conn returns nil, "closed"; nothing crashes.
local tls = require "tls"
local pki = require "support.pki"
local E = require "support.engines"
local H = require "support.hostile"

describe("API misuse", function()
  local scfg, ccfg
  setup(function() scfg, ccfg = E.configs() end)
  teardown(pki.cleanup)

  local pair = E.pair

  local function raises(pattern, f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok)
    assert.matches(pattern, tostring(err))
  end

  describe("calls after close", function()
    it("I/O and handshake return nil, \"closed\"; state queries raise a clear error", function()
      local c, s = pair()
      assert(E.handshake(c, s))
      assert.is_true(c:close())
      assert.same({ nil, "closed" }, { (c:receive()) , select(2, c:receive()) })
      assert.same({ nil, "closed" }, { (c:receive(10)), select(2, c:receive(10)) })
      assert.same({ nil, "closed", 0 }, { c:send("data") })
      assert.same({ nil, "closed" }, { c:handshake() })
      raises("attempt to use a closed tls connection", c.info, c)
      raises("attempt to use a closed tls connection", c.peer, c)
      raises("attempt to use a closed tls connection", c.setfd, c, 0)
      raises("attempt to use a closed tls connection", c.connect, c, "localhost", "1")
      assert.matches("^tls%.%a+ %(client, closed", tostring(c))
    end)

    it("the close_notify written by close() can still be drained", function()
      local c, s = pair()
      assert(E.handshake(c, s))
      c:close()
      E.move(c, s)
      assert.same({ nil, "closed", "" }, { s:receive() })
    end)

    it("a socket conn after close holds no descriptor and answers \"closed\"", function()
      local raw, srv = H.tcp_pair()
      local conn = assert(tls.wrap(srv, { mode = "server", config = scfg, timeout = 1 }))
      assert.is_true(conn:close())
      assert.equal(-1, conn:getfd())
      local data, err = conn:receive()
      assert.is_nil(data)
      assert.equal("closed", err)
      raw:close()
    end)
  end)

  describe("double close", function()
    it("is harmless on engines, socket conns, configs and listeners", function()
      local c, s = pair()
      assert(E.handshake(c, s))
      assert.is_true(c:close())
      assert.is_true(c:close())
      local raw, srv = H.tcp_pair()
      local conn = assert(tls.wrap(srv, { mode = "server", config = scfg }))
      assert.is_true(conn:close())
      assert.is_true(conn:close())
      raw:close()
      local l = assert(tls.listen("127.0.0.1", 0, { config = scfg }))
      assert.is_true(l:close())
      assert.is_true(l:close())
    end)

    -- <close> is Lua 5.4 syntax: these blocks are loaded as text, so the file parses on 5.1
    local has_close = (loadstring or load)("local x <close> = nil") ~= nil
    ;(has_close and it or pending)("close() then __close then __gc release once", function()
      assert(load([[
        local tls, ccfg = ...
        do
          local c <close> = assert(tls.engine{ config = ccfg, servername = "localhost" })
          c:handshake()
          c:close()
        end
      ]]))(tls, ccfg)
      collectgarbage()
      collectgarbage()
    end)

    ;(has_close and it or pending)("a config closed by <close> while its connections live does not break them", function()
      local c, s = assert(load([[
        local tls, ca, scfg = ...
        local c, s
        do
          local cfg <close> = assert(tls.config{ ca_file = ca })
          c = assert(tls.engine{ config = cfg, servername = "localhost" })
          s = assert(tls.engine{ config = scfg, mode = "server" })
        end
        return c, s
      ]]))(tls, pki.ca.cert, scfg)
      collectgarbage()
      assert(E.handshake(c, s))
      assert(c:send("still works\n"))
      E.move(c, s)
      assert.equal("still works", s:receive())
    end)
  end)

  describe("wrong types", function()
    it("config options name the option and the expected type", function()
      raises("options must be a table, got number", tls.config, 42)
      raises("option 'ca_file' must be a string, got number", tls.config, { ca_file = 1 })
      raises("unknown option 'bogus'", tls.config, { bogus = 1 })
      raises("option 'alpn' must be a list, got string", tls.config, { alpn = "h2" })
      raises("option 'verify_depth' must be an integer", tls.config, { verify_depth = 1.5 })
      -- an integral float (5.3+'s 2.0) is an integer here, as on 5.1
      assert(tls.config { verify_depth = 2.0, session_lifetime = 300.0 })
      raises("option 'insecure_noverifycert' must be a boolean", tls.config,
        { insecure_noverifycert = "yes" })
    end)

    it("constructors name the bad argument", function()
      raises("host must be a string, got nil", tls.connect)
      raises("expected a connected LuaSocket tcp object or a descriptor", tls.wrap, "x")
      raises("host must be a string", tls.listen, 1, 2)
      raises("option 'mode' must be \"client\" or \"server\"", tls.engine, { mode = "bogus" })
      raises("tls.config expected, got string", tls.core.client, "x")
      raises("tls.config expected, got table", tls.core.server, {})
    end)

    -- 5.3+ keeps 8443.0 a float (a JSON config, port / 1): it is a port like
    -- 8443, as on 5.1, neither refused nor sent to getaddrinfo as "8443.0"
    it("take an integral float as a port and refuse a fractional one", function()
      pki.setup()
      local l = assert(tls.listen("127.0.0.1", 0.0, { cert_file = pki.server.cert, key_file = pki.server.key }))
      local _, port = l.socket:getsockname()
      l:close()
      local conn, err = tls.connect("127.0.0.1", port + 0.0, { ca_file = pki.ca.cert, timeout = 10 })
      assert.is_nil(conn)
      assert.matches("port " .. port .. ": ", err, 1, true)
      raises("tls.connect: port must be an integer or a string, got 1.5", tls.connect, "127.0.0.1", 1.5)
      raises("tls.listen: port must be an integer or a string, got 1.5", tls.listen, "127.0.0.1", 1.5)
      raises("tls.listen: port must be an integer or a string, got table", tls.listen, "127.0.0.1", {})
    end)

    it("connection options name the function and the option", function()
      raises("tls.engine: options must be a table, got number", tls.engine, 5)
      raises("tls.wrap: options must be a table, got string", tls.wrap, 0, "server")
      raises("tls.listen: options must be a table, got number", tls.listen, "127.0.0.1", 0, 5)
      raises("tls.connect: option 'connect_timeout' must be a number of seconds, got string",
        tls.connect, "127.0.0.1", 1, { connect_timeout = "5" })
      raises("tls.connect: option 'policy' must be a function, a tls.policy or false, got string",
        tls.connect, "127.0.0.1", 1, { policy = "strict" })
      raises("tls.engine: option 'policy' must be", tls.engine,
        { config = scfg, mode = "server", policy = true })
      raises("tls.wrap: option 'policy' must be", tls.wrap, 0,
        { config = scfg, mode = "server", policy = {} })
      raises("tls.listen: option 'policy' must be", tls.listen, "127.0.0.1", 0,
        { config = scfg, policy = "x" })
      raises("tls.listen: option 'handshake_timeout' must be a number of seconds, got string",
        tls.listen, "127.0.0.1", 0, { config = scfg, handshake_timeout = "10" })
      raises("tls.listen: option 'backlog' must be an integer", tls.listen, "127.0.0.1", 0,
        { config = scfg, backlog = "128" })
      raises("tls.engine: option 'buffer_limit': number expected, got string", tls.engine,
        { config = scfg, mode = "server", buffer_limit = "1M" })
      raises("tls.engine: option 'buffer_limit': buffer limit must be between", tls.engine,
        { config = scfg, mode = "server", buffer_limit = 1 })
    end)

    it("methods name the bad argument and the expected type", function()
      local c, s = pair()
      assert(E.handshake(c, s))
      raises("invalid receive pattern", c.receive, c, "*x")
      raises("bad argument #2 .*table", c.receive, c, {})
      raises("byte count must not be negative", c.receive, c, -1)
      raises("bad argument #2 .*string expected, got no value", c.send, c)
      raises("bad argument #2 .*string expected, got table", c.send, c, {})
      raises("bad argument #2 .*timeout must be a number of seconds, got string", c.settimeout, c, "soon")
      raises("buffer limit must be between", c.setlimit, c, 1)
      raises("bad argument #2 .*string expected, got table", c.feed, c, {})
      raises("tls.conn expected, got tls.config", c.receive, scfg)
      raises("tls.conn expected", c.handshake)
      raises("reads from a socket, not from feed", function()
        local raw, srv = H.tcp_pair()
        local conn = assert(tls.wrap(srv, { mode = "server", config = scfg }))
        local ok, err = pcall(conn.feed, conn, "x")
        conn:close()
        raw:close()
        error(err)
      end)
      -- the conn is unharmed by all of the above
      assert(s:send("fine\n"))
      E.move(s, c)
      assert.equal("fine", c:receive())
    end)

    it("a conn takes a descriptor once, before any bytes went over memory", function()
      local c, s = pair()
      assert.same({ nil, "wantread" }, { c:handshake() })  -- the ClientHello is queued
      raises("setfd: the connection already has a transport", c.setfd, c, 0)
      raises("connect: the connection already has a transport", c.connect, c, "127.0.0.1", "1")
      raises("connect: only a client connection can connect", s.connect, s, "127.0.0.1", "1")
    end)

    it("feeding after feed_eof raises", function()
      local c = assert(tls.engine{ config = ccfg, servername = "localhost" })
      c:feed_eof()
      raises("input was already ended", c.feed, c, "x")
    end)
  end)

  describe("one conn used from two coroutines", function()
    -- The C core never yields and never calls back into Lua, so each call
    -- runs to its end: two coroutines interleave whole calls, never halves.
    it("interleaves whole calls: lines are never torn", function()
      local c, s = pair()
      assert(E.handshake(c, s))
      local lines = {}
      for i = 1, 200 do lines[i] = ("line %03d %s"):format(i, ("x"):rep(i)) end
      assert(s:send(table.concat(lines, "\n") .. "\n"))
      E.move(s, c)
      local got = {}
      local function reader(tag)
        return coroutine.wrap(function()
          while true do
            local line, err = c:receive("*l")
            if not line then return err end
            got[#got + 1] = line
            coroutine.yield(tag)
          end
        end)
      end
      local a, b = reader("a"), reader("b")
      local ra, rb
      repeat
        ra = a()
        rb = b()
      until ra ~= "a" or rb ~= "b"
      assert.equal("wantread", ra == "a" and rb or ra)
      assert.same(lines, got)
    end)

    it("a coroutine that closes the conn under another one's feet: the other gets \"closed\"", function()
      local c, s = pair()
      assert(E.handshake(c, s))
      local waiting = coroutine.create(function()
        local line, err = c:receive("*l")
        assert.same({ nil, "wantread" }, { line, err })
        coroutine.yield()
        return c:receive("*l")
      end)
      assert(coroutine.resume(waiting))
      assert(coroutine.wrap(function() return c:close() end)())
      local ok, line, err = coroutine.resume(waiting)
      assert.is_true(ok)
      assert.same({ nil, "closed" }, { line, err })
    end)

    it("a handshake driven from two coroutines finishes once", function()
      local c, s = pair()
      local function stepper()
        return coroutine.create(function()
          for _ = 1, 20 do
            local ok, err = c:handshake()
            if ok then return true end
            assert.is_true(E.is_want(err))
            coroutine.yield()
          end
        end)
      end
      local a, b = stepper(), stepper()
      local done = 0
      for _ = 1, 20 do
        for _, co in ipairs { a, b } do
          if coroutine.status(co) == "suspended" then
            local ok, finished = coroutine.resume(co)
            assert(ok, finished)
            if finished then done = done + 1 end
          end
        end
        E.move(c, s)
        s:handshake()
        E.move(s, c)
      end
      assert.equal(2, done)
      assert.equal("TLSv1.3", c:info().version)
    end)

    it("a conn created in a coroutine that died stays usable", function()
      local c, s = coroutine.wrap(function() return pair() end)()
      collectgarbage()
      assert(E.handshake(c, s))
      assert(c:send("ok\n"))
      E.move(c, s)
      assert.equal("ok", s:receive())
    end)
  end)
end)
