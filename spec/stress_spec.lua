-- GC stress and soak: a full collection between every step of a handshake,
-- objects dropped mid-handshake, and descriptors and memory flat over many
-- connections, successful and failed.
--
-- STRESS_N sets how many engine connections the soak runs (default 1000:
-- half successful, half failing in turn on verification and on garbage);
-- `make soak` runs it with 10,000. STRESS_LOOPBACK_N sets how many loopback
-- connections through a listener follow (default STRESS_N/10, at least 20;
-- `make soak` runs 10,000 too). STRESS_NO_RSS=1 skips the resident-size
-- bound (set by make asan and make memcheck, whose allocators keep freed
-- memory in quarantine).
local tls = require "tls"
local pki = require "support.pki"
local E = require "support.engines"
local H = require "support.hostile"
local proc = require "support.proc"

local N = tonumber(os.getenv("STRESS_N")) or 1000
local LOOPBACK_N = tonumber(os.getenv("STRESS_LOOPBACK_N")) or math.max(math.floor(N / 10), 20)
local CHECK_RSS = os.getenv("STRESS_NO_RSS") ~= "1"

local function rss_kib()
  local f = io.open("/proc/self/statm")
  if not f then return 0 end
  local pages = f:read("*n")
  pages = f:read("*n")  -- the second field is the resident set
  f:close()
  return pages * 4
end

local function full_gc()
  collectgarbage()
  collectgarbage()
end

-- Run round(1..n) after the caller's warm-up and check that descriptors,
-- the Lua heap and (unless STRESS_NO_RSS) the resident size stay flat.
local function assert_flat(n, what, round)
  full_gc()
  local fds, heap, rss = proc.fds(), collectgarbage("count"), rss_kib()
  for i = 1, n do
    round(i)
    -- the collector cannot see the libtls state an unclosed conn holds, so
    -- how far it lags behind depends on the heap's size and each Lua
    -- version's pacing (LuaJIT's in a long busted run: 20 MB); a full
    -- collection every 100 rounds bounds that lag alike on every version
    if i % 100 == 0 then full_gc() end
  end
  full_gc()
  assert.equal(fds, proc.fds())
  -- the Lua heap holds no per-connection residue
  assert.is_true(collectgarbage("count") - heap < 256,
    ("Lua heap grew by %.0f KiB"):format(collectgarbage("count") - heap))
  if CHECK_RSS then
    -- malloc may keep some freed memory; a leak of even 1 KiB per
    -- connection would pass this bound at 10,000 connections
    local grew = rss_kib() - rss
    assert.is_true(grew < 8192, ("resident size grew by %d KiB over %d %s"):format(grew, n, what))
  end
end

describe("under GC stress", function()
  local scfg, ccfg
  setup(function() scfg, ccfg = E.configs() end)
  teardown(pki.cleanup)

  it("a handshake survives a full collection between every step", function()
    -- configs, engines and the options tables are made inline, so only the
    -- engines' own anchors keep the configs alive
    local c = assert(tls.engine{ ca_file = pki.ca.cert, servername = "localhost" })
    full_gc()
    local s = assert(tls.engine{ mode = "server", cert_file = pki.server.cert,
      key_file = pki.server.key })
    full_gc()
    local steps = 0
    assert(E.handshake(c, s, { step = function() steps = steps + 1; full_gc() end }))
    assert.is_true(steps > 4)
    for i = 1, 20 do
      assert(c:send(("message %d\n"):format(i)))
      full_gc()
      E.move(c, s)
      full_gc()
      assert.equal(("message %d"):format(i), s:receive())
      full_gc()
    end
    assert.equal("localhost", c:info().servername)
    full_gc()
    assert.matches("CN=localhost", c:peer().subject)
    c:close()
    full_gc()
    E.move(c, s)
    local data, err = s:receive()
    assert.is_nil(data)
    assert.equal("closed", err)
  end)

  it("a handshake survives incremental and generational collection at every step", function()
    -- the modes this Lua has (5.1 and 5.3 have only their default, incremental)
    local modes = {}
    for _, mode in ipairs { "incremental", "generational" } do
      if pcall(collectgarbage, mode) then modes[#modes + 1] = mode end
    end
    if #modes == 0 then modes[1] = "incremental" end
    for _, mode in ipairs(modes) do
      pcall(collectgarbage, mode)
      local c = assert(tls.engine{ config = ccfg, servername = "localhost" })
      local s = assert(tls.engine{ config = scfg, mode = "server" })
      assert(E.handshake(c, s, { step = function() collectgarbage("step", 1) end }))
      assert(s:send("ok\n"))
      E.move(s, c)
      assert.equal("ok", c:receive())
    end
    pcall(collectgarbage, "incremental")
  end)

  it("engines dropped at every point of a handshake are collected safely", function()
    local steps = 0
    assert(E.handshake(assert(tls.engine{ config = ccfg, servername = "localhost" }),
      assert(tls.engine{ config = scfg, mode = "server" }), { step = function() steps = steps + 1 end }))
    local dropped = setmetatable({}, { __mode = "v" })
    for stop = 1, steps do
      local c = assert(tls.engine{ config = ccfg, servername = "localhost" })
      local s = assert(tls.engine{ config = scfg, mode = "server" })
      dropped[2 * stop - 1], dropped[2 * stop] = c, s
      local n = 0
      local ok, err = pcall(E.handshake, c, s, { step = function()
        n = n + 1
        if n == stop then error("drop", 0) end
      end })
      assert.is_false(ok)
      assert.equal("drop", err)   -- stopped by the step, not by a failed handshake
    end
    full_gc()
    assert.is_nil(next(dropped), "an engine dropped mid-handshake was not collected")
  end)

  it("a socket conn dropped mid-handshake is collected and its descriptor closed", function()
    local raws = {}
    full_gc()
    local before = proc.fds()
    for i = 1, 10 do
      local raw, srv = H.tcp_pair()
      local conn = assert(tls.wrap(srv, { mode = "server", config = scfg, timeout = 0 }))
      raw:send(H.client_hello(ccfg))
      conn:handshake()  -- the server's flight goes out; then the conn is dropped
      raws[i] = raw
    end
    full_gc()
    for _, raw in ipairs(raws) do raw:close() end
    assert.equal(before, proc.fds())
  end)
end)

describe("soak: " .. N .. " engine connections, " .. LOOPBACK_N .. " loopback", function()
  local scfg, ccfg, wrong_ca
  setup(function()
    scfg, ccfg = E.configs()
    wrong_ca = assert(tls.config{ ca_file = pki.other_ca.cert })
  end)
  teardown(function() pki.cleanup() end)

  local function one(i)
    local kind = i % 4
    local s = assert(tls.engine{ config = scfg, mode = "server" })
    if kind == 1 then      -- verification fails
      local c = assert(tls.engine{ config = wrong_ca, servername = "localhost" })
      local ok, err = E.handshake(c, s)
      assert(not ok and err:find("verify:"), err)
    elseif kind == 3 then  -- the peer sends garbage
      s:feed("garbage")
      local ok, err = s:handshake()
      assert(not ok and err:find("^handshake"), err)
    else                   -- a full exchange
      local c = assert(tls.engine{ config = ccfg, servername = "localhost" })
      assert(E.handshake(c, s))
      assert(c:send("ping\n"))
      E.move(c, s)
      assert(s:receive() == "ping")
      c:close()
    end
    s:close()
  end

  it("keeps descriptors and memory flat, failures included", function()
    -- malloc settles within a few hundred connections (the verification
    -- failures' first ones cost the most); measure from there
    for i = 1, 400 do one(i) end
    assert_flat(N, "connections", one)
  end)

  it("keeps descriptors and memory flat over loopback connections, failures included", function()
    local l = assert(tls.listen("127.0.0.1", 0, { config = scfg }))
    local port = select(2, l:getsockname())
    local rounds = LOOPBACK_N
    local function round(i)
      local c = assert(tls.core.client(i % 2 == 0 and ccfg or wrong_ca, "localhost", true))
      assert(c:connect("127.0.0.1", tostring(port), 5))
      c:settimeout(0)
      local s = assert(l:accept_raw(5))
      s:settimeout(0)
      local okc, oks, ec, es
      for _ = 1, 100000 do
        if not okc then okc, ec = c:handshake() end
        if not oks then oks, es = s:handshake() end
        if (okc or not E.is_want(ec)) and (oks or not E.is_want(es)) then break end
      end
      if i % 2 == 0 then
        assert(okc and oks, tostring(ec) .. " / " .. tostring(es))
      else
        assert.matches("^verify:", ec)
      end
      c:close()
      s:close()
    end
    -- warm up as the engine soak does (fewer rounds under valgrind's
    -- small STRESS_N), then measure
    for i = 0, math.min(200, rounds) - 1 do round(i) end
    assert_flat(rounds, "loopback connections", round)
    l:close()
  end)
end)
