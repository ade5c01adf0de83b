-- Engine handshakes in a fresh process, for the memory check:
-- lua5.4 spec/peers/engine_soak.lua N CERT KEY CA
-- Runs 200 warm-up handshakes, then N more (each engine pair handshakes,
-- moves one message and closes), and prints
-- "lua KIB0 KIB1 rss KIB0 KIB1" measured after full collections.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = package.cpath .. ";build/?.so" -- after LUA_CPATH: make test-libressl sets it
local tls = require "tls"

local N, cert, key, ca = tonumber(arg[1]), arg[2], arg[3], arg[4]
local scfg = assert(tls.config { cert_file = cert, key_file = key })
local ccfg = assert(tls.config { ca_file = ca })

local function move(from, to)
  local d = from:drain()
  if #d > 0 then assert(to:feed(d)) end
  return #d
end

local function once()
  local s = assert(tls.engine { mode = "server", config = scfg })
  local c = assert(tls.engine { mode = "client", config = ccfg, servername = "localhost" })
  for _ = 1, 20 do
    local a, ea = c:handshake()
    local b, eb = s:handshake()
    assert(a or ea == "wantread" or ea == "wantwrite", ea)
    assert(b or eb == "wantread" or eb == "wantwrite", eb)
    if move(c, s) + move(s, c) == 0 and a and b then
      assert(c:send("ping"))
      move(c, s)
      assert(s:receive(4) == "ping")
      c:close()
      s:close()
      return
    end
  end
  error("handshake made no progress")
end

local function rss_kb()
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("*n", "*n")
  f:close()
  return resident * 4
end

for _ = 1, 200 do once() end  -- warm-up: allocator pools, OpenSSL's lazy tables
collectgarbage(); collectgarbage()
local lua0, rss0 = collectgarbage("count"), rss_kb()
for _ = 1, N do once() end
collectgarbage(); collectgarbage()
print(("lua %.0f %.0f rss %d %d"):format(lua0, collectgarbage("count"), rss0, rss_kb()))
