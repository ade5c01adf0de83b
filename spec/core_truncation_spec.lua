-- A clean end (the peer's close_notify) and a cut one (the stream ends or
-- is reset without it, which anyone on the path can cause) read apart:
-- a cut is nil, "truncated", partial for every pattern, "*a" included.
-- The peer is Python's ssl module (OpenSSL), so the classification cannot
-- rest on libtls talking to itself.
local tls = require "tls"
local libtls = require "support.libtls"
local pki = require "support.pki"
local E = require "support.engines"
local proc = require "support.proc"
local peers = require "support.peers"

local MESSAGE = "first half|second half"

describe("the end of a peer's stream", function()
  local servers = {}
  setup(function()
    pki.setup()
    for _, mode in ipairs({ "notify", "cut", "reset" }) do
      local port = proc.free_port()
      servers[mode] = proc.start(("python3 spec/peers/tls_end_server.py %d %s %s %s")
        :format(port, peers.quote(pki.server.cert), peers.quote(pki.server.key), mode),
        { port = port })
      servers[mode].port = port
    end
  end)
  teardown(function()
    for _, s in pairs(servers) do s.stop() end
    pki.cleanup()
  end)

  -- A conn to the server of `mode` that has sent MESSAGE back (two records).
  local function ask(mode)
    local conn = assert(tls.connect("localhost", servers[mode].port,
      { ca_file = pki.ca.cert, timeout = 10 }))
    assert(conn:send(MESSAGE .. "\n"))
    return conn
  end

  describe("with close_notify", function()
    it("\"*a\" returns the data", function()
      local conn = ask("notify")
      assert.equal(MESSAGE, conn:receive("*a"))
      conn:close()
    end)

    it("\"*l\" and a byte count return nil, \"closed\" and the data", function()
      local conn = ask("notify")
      assert.same({ nil, "closed", MESSAGE }, { conn:receive("*l") })
      conn:close()
      conn = ask("notify")
      assert.same({ nil, "closed", MESSAGE }, { conn:receive(1000) })
      conn:close()
    end)
  end)

  for _, mode in ipairs({ "cut", "reset" }) do
    describe(mode == "cut" and "without close_notify (a FIN)" or "without close_notify (a reset)", function()
      it("\"*a\" returns nil, \"truncated\" and the data", function()
        local conn = ask(mode)
        local data, err, partial = conn:receive("*a")
        assert.is_nil(data)
        assert.equal("truncated", err)
        -- a reset may discard bytes the kernel had not handed over yet
        if mode == "cut" then assert.equal(MESSAGE, partial) end
        conn:close()
      end)

      it("\"*l\", \"*L\" and a byte count return nil, \"truncated\" and the data", function()
        for _, pattern in ipairs({ "*l", "*L", 1000 }) do
          local conn = ask(mode)
          local data, err, partial = conn:receive(pattern)
          assert.is_nil(data)
          assert.equal("truncated", err)
          if mode == "cut" then assert.equal(MESSAGE, partial) end
          -- final: asked again, receive says the same
          assert.equal("truncated", select(2, conn:receive(pattern)))
          conn:close()
        end
      end)
    end)
  end
end)

describe("the end of an engine's input", function()
  local function pair()
    local c, s = E.pair()
    assert(E.handshake(c, s))
    return s, c
  end
  setup(pki.setup)
  teardown(pki.cleanup)

  it("feed_eof() after the peer's close_notify is a clean end", function()
    local s, c = pair()
    assert(s:send("bye"))
    s:close()   -- queues close_notify; drain() still hands it over
    assert(c:feed(s:drain()))
    c:feed_eof()
    assert.equal("bye", c:receive("*a"))
  end)

  it("feed_eof() without close_notify is a truncation", function()
    local s, c = pair()
    assert(s:send("cut here"))
    assert(c:feed(s:drain()))
    c:feed_eof()
    assert.same({ nil, "truncated", "cut here" }, { c:receive("*a") })
    assert.same({ nil, "truncated", "" }, { c:receive(5) })
    s:close()
  end)

  it("feed_eof() when only non-data records wait (TLS 1.3 tickets) is a truncation, not wantread", function()
    -- the last record the client reads brings no data; the end of input
    -- right after it must still be reported, not a wait for more input
    for _, pattern in ipairs({ "*a", "*l", 5, 20000 }) do
      local s, c = pair()
      local _, waiting = c:pending()
      if libtls.libressl then
        assert.equal(0, waiting)  -- LibreSSL's server sends no TLS 1.3 tickets
      else
        assert.is_true(waiting > 0)  -- the server's session tickets
      end
      c:feed_eof()
      assert.same({ nil, "truncated", "" }, { c:receive(pattern) }, tostring(pattern))
      s:close()
    end
  end)
end)
