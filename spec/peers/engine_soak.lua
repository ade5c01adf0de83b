-- Engine handshakes in a fresh process, for the memory check:
-- lua5.4 spec/peers/engine_soak.lua N CERT KEY CA
-- Runs 200 warm-up handshakes, then N more (each engine pair handshakes,
-- moves one message and closes), and prints
-- "lua KIB0 KIB1 rss KIB0 KIB1" measured after full collections.
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = package.cpath .. ";build/?.so" -- after LUA_CPATH: make test-libressl sets it
local tls = require "tls"
local E = require "support.engines"

local N, cert, key, ca = tonumber(arg[1]), arg[2], arg[3], arg[4]
local scfg = assert(tls.config { cert_file = cert, key_file = key })
local ccfg = assert(tls.config { ca_file = ca })

local function once()
  local s = assert(tls.engine { mode = "server", config = scfg })
  local c = assert(tls.engine { mode = "client", config = ccfg, servername = "localhost" })
  assert(E.handshake(c, s))
  assert(c:send("ping"))
  E.move(c, s)
  assert(s:receive(4) == "ping")
  c:close()
  s:close()
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
