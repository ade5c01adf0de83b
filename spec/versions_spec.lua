-- One source on every Lua: what differs between Lua 5.1/LuaJIT and 5.4 is
-- bridged (src/compat.h, lua/tls/compat.lua) so that this file's answers are
-- the same on 5.1, LuaJIT, 5.2, 5.3 and 5.4 (`make test-all` runs it on each).
local tls = require "tls"
local asn1 = require "tls.asn1"
local compat = require "tls.compat"
local pki = require "support.pki"
local E = require "support.engines"

local version = rawget(_G, "jit") and "jit" or _VERSION:match("%d+%.%d+")

-- DER for tag and value (short or long length form)
local function tlv(tag, v)
  local n = #v
  local len = n < 128 and string.char(n)
    or "\131" .. string.char(math.floor(n / 65536), math.floor(n / 256) % 256, n % 256)
  return string.char(tag) .. len .. v
end

describe("every Lua version", function()
  it("loads the module built for the Lua running the suite", function()
    local found
    for template in package.cpath:gmatch("[^;]+") do
      local path = template:gsub("%?", "tls/core")
      local f = io.open(path, "rb")
      if f then f:close() found = path break end
    end
    assert.truthy(found, package.cpath)
    if version == "5.4" then  -- build/, or another 5.4 build (make test-libressl, PORTABLE=1)
      assert.is_nil(found:find("build/5%.%d/") or found:find("build/jit/"), found)
    else
      assert.truthy(found:find("build/" .. version .. "/tls/core.so", 1, true), found)
    end
  end)

  describe("the C core", function()
    local scfg, ccfg
    setup(function()
      pki.setup()
      scfg, ccfg = E.configs()
    end)
    teardown(function() pki.cleanup() end)

    it("refuses a fractional count as 5.3+ does, instead of truncating it", function()
      local c = assert(tls.engine { config = ccfg, servername = "localhost" })
      local ok, err = pcall(c.drain, c, 2.5)
      assert.is_false(ok)
      assert.matches("number has no integer representation", err)
      assert.is_true(c:close())
    end)

    it("names the type it got in an argument error, from the metatable's __name", function()
      local c = assert(tls.engine { config = ccfg, servername = "localhost" })
      local ok, err = pcall(c.handshake, scfg)
      assert.is_false(ok)
      assert.matches("tls.conn expected, got tls.config", err)
      c:close()
    end)

    it("keeps what a conn anchors in its uservalues: its config outlives every other reference", function()
      local s = assert(tls.engine { config = assert(tls.config { cert_file = pki.server.cert,
        key_file = pki.server.key }), mode = "server" })
      local c = assert(tls.engine { config = assert(tls.config { ca_file = pki.ca.cert }),
        servername = "localhost" })
      collectgarbage()
      collectgarbage()
      assert(E.handshake(c, s))
      assert(c:send("anchored\n"))
      E.move(c, s)
      assert.equal("anchored", s:receive())
    end)

    it("reads 1 MiB in one receive through the growing buffer", function()
      local s = assert(tls.engine { config = scfg, mode = "server", buffer_limit = 4 * 1048576 })
      local c = assert(tls.engine { config = ccfg, servername = "localhost",
        buffer_limit = 4 * 1048576 })
      assert(E.handshake(c, s))
      local block = {}
      for i = 1, 4096 do block[i] = string.char(i % 251) end
      local data = table.concat(block):rep(256)
      assert(s:send(data))
      E.move(s, c)
      local got = assert(c:receive(#data))
      assert.equal(#data, #got)
      assert.is_true(got == data)
    end)
  end)

  -- Lua 5.2's lua_pushlstring steps the collector before it makes the
  -- string (5.3+ after): a cycle then freed the newest 16 KiB string at the
  -- top of the heap with the rest, glibc gave that memory back to the
  -- kernel and the next strings faulted it in again, page by page
  -- (src/compat.h makes 5.2 step after, as 5.3+ do). The bench's own bulk
  -- peers (bench/peer_module.lua) show it: the reader counts its minor page
  -- faults over 8 MiB of 16 KiB receives.
  describe("bulk receives", function()
    local proc = require "support.proc"
    setup(pki.setup)
    teardown(pki.cleanup)

    it("reuse the heap: 8 MiB in 16 KiB receives does not fault its pages in again and again", function()
      local port = proc.free_port()
      -- no { port = } probe: the peer serves one connection, the probe's
      local server = proc.start(("%s bench/peer_module.lua bulk-server %d %s %s tlsv1.3 1")
        :format(proc.lua, port, pki.server.cert, pki.server.key))
      local deadline = os.time() + 10
      while not server.output():find("READY", 1, true) and os.time() <= deadline do
        os.execute("sleep 0.05")
      end
      local out, status = proc.run(("%s bench/peer_module.lua bulk-client 127.0.0.1 %d tlsv1.3 sink %d 16384")
        :format(proc.lua, port, 8 * 1048576))
      local result = server.wait()
      assert.equal(0, status, out)
      local bytes, faults = result:match("bytes=(%d+).*faults=(%-?%d+)")
      assert.equal(8 * 1048576, tonumber(bytes), result)
      -- 8 MiB is 2048 pages: a heap given back each cycle faulted most of
      -- them in again (900 to 960 on 5.2 before); a reused heap, a few dozen
      assert.is_true(tonumber(faults) >= 0 and tonumber(faults) < 512,
        faults .. " minor page faults for 8 MiB received")
    end)
  end)

  describe("the Lua layer", function()
    it("tells integers the way 5.3+ does for integral numbers", function()
      assert.is_true(compat.is_integer(443))
      assert.is_false(compat.is_integer(2.5))
      assert.is_false(compat.is_integer("443"))
      assert.is_false(compat.is_integer(math.huge))
      assert.equal(8, compat.tointeger(8))
      assert.is_nil(compat.tointeger(0.5))
    end)

    it("pcall lets the function inside yield, and reports its errors", function()
      local co = coroutine.create(function()
        local ok, v = compat.pcall(function(a)
          local back = coroutine.yield(a + 1)
          return back * 2
        end, 1)
        local bad, err = compat.pcall(function() coroutine.yield() error("inside", 0) end)
        return ok, v, bad, err
      end)
      local _, first = coroutine.resume(co)
      assert.equal(2, first)
      coroutine.resume(co, 21)
      local _, ok, v, bad, err = coroutine.resume(co)
      assert.same({ true, 42, false, "inside" }, { ok, v, bad, err })
    end)

    it("prints large OID arcs exactly and refuses arcs beyond 49 bits", function()
      -- 2.999.281474976710655 (2^48 - 1): base-128 groups of the arc
      local function base128(n)
        local out = { string.char(n % 128) }
        n = math.floor(n / 128)
        while n > 0 do
          table.insert(out, 1, string.char(128 + n % 128))
          n = math.floor(n / 128)
        end
        return table.concat(out)
      end
      local node = assert(asn1.read(tlv(6, base128(80 + 999) .. base128(2 ^ 48 - 1)), 1))
      assert.equal("2.999.281474976710655", asn1.oid(node))
      local big = assert(asn1.read(tlv(6, "\42" .. base128(2 ^ 49)), 1))
      assert.matches("arc too large", select(2, asn1.oid(big)))
    end)

    it("checks UTF8String with the rule of Lua 5.4's utf8.len on every version", function()
      local function utf8(s) return asn1.string(assert(asn1.read(tlv(12, s), 1))) end
      assert.equal("caf\195\169 \226\130\172 \240\159\152\128", utf8("caf\195\169 \226\130\172 \240\159\152\128"))
      for _, bad in ipairs {
        "\192\175",          -- overlong '/'
        "\224\128\175",      -- overlong, 3 bytes
        "\237\160\128",      -- surrogate U+D800
        "\244\144\128\128",  -- U+110000
        "\195",              -- truncated
        "\128",              -- lone continuation byte
        "\248\136\128\128\128", -- 5-byte form
      } do
        assert.is_nil((utf8(bad)), ("accepted %q"):format(bad))
      end
    end)

    it("decodes BMPString and UniversalString to the same UTF-8", function()
      local bmp = asn1.string(assert(asn1.read(tlv(30, "\0a\0\233\32\172"), 1)))
      assert.equal("a\195\169\226\130\172", bmp)
      local univ = asn1.string(assert(asn1.read(tlv(28, "\0\1\246\0"), 1)))
      assert.equal("\240\159\152\128", univ)
    end)
  end)
end)

-- A child started as "lua5.4 ..." runs 5.4 with the LUA_CPATH the suite
-- exports (proc.run), which names this version's build: on 5.1 it cannot
-- load it. Children run proc.lua (peers.LUA), the suite's own Lua.
describe("the specs' child processes", function()
  it("run the suite's Lua, never a hard-coded lua5.x or luajit", function()
    local p = assert(io.popen("find spec -name '*.lua' | sort"))
    local bad = {}
    for file in p:lines() do
      local n = 0
      for line in io.lines(file) do
        n = n + 1
        local code = line:gsub("^%s*%-%-.*$", "")
        if code:find("[\"'%[]lua5%.%d ") or code:find("[\"'%[]luajit ") then
          bad[#bad + 1] = file .. ":" .. n .. ": " .. line
        end
      end
    end
    p:close()
    assert(#bad == 0, "use proc.lua (support.proc) instead of:\n" .. table.concat(bad, "\n"))
  end)
end)
