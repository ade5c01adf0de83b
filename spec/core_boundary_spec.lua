-- The C core's API for the Lua layer: what a conn is (mode, kind, config),
-- the one hook that runs a check after the handshake and before data flows
-- (setcheck), core.type and core.interpose. lua/ learns about conns only
-- through these: no registry, no parsing of tostring.
local tls = require "tls"
local core = require "tls.core"
local pki = require "support.pki"
local E = require "support.engines"
local H = require "support.hostile"

describe("the core's API for the Lua layer", function()
  local scfg, ccfg
  setup(function() scfg, ccfg = E.configs() end)
  teardown(pki.cleanup)

  local function engines(copts)
    local c, s = E.pair(copts)
    return s, c
  end

  it("conn:mode() and conn:kind() say which side and which transport, closed or not", function()
    local s, c = engines()
    assert.equal("server", s:mode())
    assert.equal("client", c:mode())
    assert.equal("engine", c:kind())
    c:close()
    assert.equal("client", c:mode())
    assert.equal("engine", c:kind())
    local raw, srv = H.tcp_pair()
    local conn = assert(tls.wrap(srv, { mode = "server", config = scfg }))
    assert.equal("socket", conn:kind())
    assert.equal("server", conn:mode())
    conn:close()
    assert.equal("socket", conn:kind())
    raw:close()
    s:close()
  end)

  it("conn:config() is the config the conn was made from (a server conn's: its server's)", function()
    local s, c = engines()
    assert.equal(ccfg, c:config())
    assert.equal(scfg, s:config())
    c:close(); s:close()
  end)

  it("setcheck: the check runs once, at the handshake() that finds the handshake done", function()
    local s, c = engines()
    local calls = 0
    c:setcheck(function(conn)
      calls = calls + 1
      assert.equal(c, conn)
      return true
    end)
    assert(E.handshake(c, s))
    assert.equal(1, calls)
    assert.is_true(c:handshake())
    assert.equal(1, calls)
    assert(s:send("data"))
    c:feed(s:drain())
    assert.equal("data", c:receive(4))
  end)

  it("setcheck: a refusal closes the conn and returns nil, \"policy: <reason>\"", function()
    for _, case in ipairs({
      { function() return nil, "no thanks" end, "policy: no thanks" },
      { function() return false end, "policy: rejected" },
      { function() return nil, "policy: pins: no pin matched" end, "policy: pins: no pin matched" },
    }) do
      local s, c = engines()
      c:setcheck(case[1])
      local ok, err = E.handshake(c, s)
      assert.is_nil(ok)
      assert.equal("client: " .. case[2], err)
      assert.same({ nil, "closed" }, { c:receive() })
      s:close()
    end
  end)

  it("setcheck: what the check raises propagates; setcheck(nil) drops the check; non-callables raise", function()
    local s, c = engines()
    c:setcheck(function() error("boom") end)
    assert.error_matches(function() E.handshake(c, s) end, "boom")
    c:setcheck(nil)
    assert.is_true(c:handshake())
    assert.has_error(function() c:setcheck(42) end, "bad argument #1 to 'setcheck' (a function, a callable or nil expected)")
    c:setcheck(setmetatable({}, { __call = function() return true end }))
    assert.is_true(c:handshake())
    s:close()
  end)

  it("core.type names the core's objects, and nothing else", function()
    local s, c = engines()
    assert.equal("tls.conn", core.type(c))
    assert.equal("tls.config", core.type(ccfg))
    assert.equal("tls.server", core.type(assert(core.server(scfg))))
    local l = assert(core.listen("127.0.0.1", "0"))
    assert.equal("tls.listen_socket", core.type(l))
    l:close()
    assert.is_nil(core.type({}))
    assert.is_nil(core.type(io.stdout))
    assert.is_nil(core.type(nil))
    c:close(); s:close()
  end)

  it("one metatable name per kind of object: tls.listen wraps a tls.listen_socket", function()
    local l = assert(tls.listen("127.0.0.1", 0, { config = scfg }))
    assert.matches("^tls%.listener %(fd %d+%)$", tostring(l))
    assert.matches("^tls%.listen_socket ", tostring(l.socket))
    l:close()
    assert.equal("tls.listener (closed)", tostring(l))
  end)

  it("core.interpose adds a method to every conn and returns the one it replaced", function()
    local s, c = engines()
    local old = core.interpose("spec_probe", function(conn) return conn:mode() .. "!" end)
    assert.is_nil(old)
    assert.equal("client!", c:spec_probe())
    local mine = core.interpose("spec_probe", old or function() end)
    assert.is_function(mine)
    c:close(); s:close()
  end)

  it("no file under lua/ reads the registry or parses tostring to learn about a conn", function()
    local p = io.popen("ls lua/tls/*.lua lua/tls/*/*.lua 2>/dev/null")
    for file in p:lines() do
      local f = assert(io.open(file))
      local src = f:read("*a")
      f:close()
      assert.is_nil(src:find("getregistry", 1, true), file)
      assert.is_nil(src:find("tostring%(conn%):"), file)
      assert.is_nil(src:find(":_%a"), file .. " calls a private _method")
    end
    p:close()
  end)
end)
