-- Prints how long x509.parse_chain takes on the system CA bundle.
-- Usage: LUA_PATH='lua/?.lua;;' lua5.4 bench/x509_bench.lua [bundle] [rounds]
local x509 = require "tls.x509"

local path = arg[1] or "/etc/ssl/certs/ca-certificates.crt"
local rounds = tonumber(arg[2]) or 5
local f = assert(io.open(path, "rb"))
local pem = f:read("*a")
f:close()

local best, count = math.huge, 0
for _ = 1, rounds do
  local t0 = os.clock()
  local certs = assert(x509.parse_chain(pem))
  local dt = os.clock() - t0
  count = #certs
  if dt < best then best = dt end
end
print(("%d certificates from %s: best of %d runs %.1f ms (%.2f ms per certificate)")
  :format(count, path, rounds, best * 1000, best * 1000 / count))
