-- Bench peer for the HTTP/2 section (bench/sections/72_h2.lua): tls.https
-- over HTTP/2 and HTTP/1.1 against a local nginx, and lua-zlib alone.
--   gets-cq URL N CONC VERSION TRUST   N GETs from CONC cqueues coroutines
--   download URL VERSION TRUST         one body into a counting sink
--   gunzip FILE                        lua-zlib inflating FILE (64 KiB pieces)
-- VERSION: "2" or "1.1" (http_version). TRUST: file:PEM or path:DIR.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path
local P = require "peerlib"

local roles = {}

local function opts(version, trust)
  local o = { http_version = version, timeout = 60 }
  if trust:match("^path:") then o.ca_path = trust:sub(6) else o.ca_file = trust:sub(6) end
  return o
end

function roles.gets_cq(url, n, conc, version, trust)
  local https = require "tls.https"
  local cqueues = require "cqueues"
  n, conc = tonumber(n), tonumber(conc)
  local o = opts(version, trust)
  local cq = cqueues.new()
  local done, failed = 0, nil
  local cpu0, wall0 = P.cpu(), P.wall()
  for c = 1, conc do
    cq:wrap(function()
      for _ = 1, math.floor(n / conc) + (c <= n % conc and 1 or 0) do
        local res, err = https.get(url, o)
        if not res or res.status ~= 200 then failed = failed or tostring(err or res.status) end
        done = done + 1
      end
    end)
  end
  while not cq:empty() do assert(cq:step()) end
  if failed then error("GET " .. url .. ": " .. failed) end
  P.report("gets", done, "opened", https.pool_stats().connections_opened,
    "cpu", P.cpu() - cpu0, "wall", P.wall() - wall0)
end

function roles.download(url, version, trust)
  local https = require "tls.https"
  local o = opts(version, trust)
  local bytes = 0
  o.url = url
  o.sink = function(chunk) if chunk then bytes = bytes + #chunk end return 1 end
  local cpu0, wall0 = P.cpu(), P.wall()
  local res, err = https.fetch(o)
  if not res then error("GET " .. url .. ": " .. tostring(err)) end
  P.report("bytes", bytes, "version", res.version == "2" and 2 or 1, "decoded", res.decoded and 1 or 0,
    "cpu", P.cpu() - cpu0, "wall", P.wall() - wall0)
end

function roles.gunzip(file)
  local zlib = require "zlib"
  local f = assert(io.open(file, "rb"))
  local data = f:read("*a")
  f:close()
  local cpu0, wall0 = P.cpu(), P.wall()
  local inflate, bytes = zlib.inflate(47), 0
  for i = 1, #data, 65536 do
    local out = inflate(data:sub(i, i + 65535))
    bytes = bytes + #out
  end
  P.report("bytes", bytes, "cpu", P.cpu() - cpu0, "wall", P.wall() - wall0)
end

local by_name = {}
for name, f in pairs(roles) do by_name[name:gsub("_", "-")] = f end
P.main(by_name, arg)
