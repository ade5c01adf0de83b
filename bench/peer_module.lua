-- The lua-tls peer for the benchmarks: the roles of bench/ctls.c, written
-- the way a user of the module writes them (tls.listen/accept,
-- tls.connect with an options table, tls.engine).
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path
local P = require "peerlib"
local tls = require "tls"

local function server_opts(cert, key, proto)
  return { cert_file = cert, key_file = key, protocols = proto }
end

-- TRUST as in ctls: insecure, default, path:DIR, file:FILE
local function client_opts(proto, trust, session)
  local o = { protocols = proto }
  if trust == "insecure" then
    o.insecure_noverifycert, o.insecure_noverifyname = true, true
  elseif trust:match("^path:") then
    o.ca_path = trust:sub(6)
  elseif trust:match("^file:") then
    o.ca_file = trust:sub(6)
  end
  o.session_file = session
  return o
end

local roles = {}

-- A listener's accept, as P.server_hs and P.hold_server take it.
local function acceptor(port, cert, key, proto)
  local l = assert(tls.listen("127.0.0.1", port, server_opts(cert, key, proto)))
  P.ready()
  return function() return l:accept() end
end

function roles.server_hs(port, cert, key, proto, count, warm)
  P.server_hs(acceptor(port, cert, key, proto), count, warm)
end

-- A client writes tls.connect(host, port, opts) with its options each time;
-- with BENCH_REUSE_CONFIG=1 it builds one tls.config and passes config = cfg.
local function connector(host, port, proto, trust, session)
  local opts = client_opts(proto, trust, session)
  if os.getenv("BENCH_REUSE_CONFIG") == "1" then
    opts = { config = assert(tls.config(opts)) }
  end
  return function()
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.servername = "localhost"
    return tls.connect(host, port, o)
  end
end

local function facts(conn)
  local info = conn:info()
  return info.version, info.cipher, info.resumed
end

function roles.client_hs(host, port, proto, count, warm, trust, session)
  P.client_hs(connector(host, port, proto, trust, session), facts, count, warm, not session)
end

function roles.bulk_server(port, cert, key, proto, conns)
  local accept = acceptor(port, cert, key, proto)
  for _ = 1, tonumber(conns) do
    local conn = accept()
    if conn then
      P.bulk_serve(conn)
      conn:close()
    end
  end
end

function roles.bulk_client(host, port, proto, mode, total, chunk)
  total, chunk = tonumber(total), tonumber(chunk)
  local o = client_opts(proto, "insecure")
  local conn = assert(tls.connect(host, port, o))
  P.bulk_write(conn, mode, total, chunk)
  conn:close()
end

function roles.hold_server(port, cert, key, proto)
  P.hold_server(acceptor(port, cert, key, proto))
end

function roles.hold_client(host, port, proto, n, warm, trust, server)
  P.hold_client(connector(host, port, proto, trust), n, warm, server)
end

--- Engines: a client and a server engine pumped in this process.

local function engine_configs(cert, key, ca, proto)
  local scfg = assert(tls.config(server_opts(cert, key, proto)))
  local ccfg = assert(tls.config { ca_file = ca, protocols = proto })
  return scfg, ccfg
end

local function pair_handshake(scfg, ccfg)
  local c = assert(tls.engine { mode = "client", config = ccfg, servername = "localhost" })
  local s = assert(tls.engine { mode = "server", config = scfg })
  local cdone, sdone = false, false
  for _ = 1, 50 do
    if not cdone then
      local ok, err = c:handshake()
      if ok then cdone = true
      elseif err ~= "wantread" and err ~= "wantwrite" then error("client handshake: " .. err) end
    end
    local out = c:drain()
    if #out > 0 then assert(s:feed(out)) end
    if not sdone then
      local ok, err = s:handshake()
      if ok then sdone = true
      elseif err ~= "wantread" and err ~= "wantwrite" then error("server handshake: " .. err) end
    end
    out = s:drain()
    if #out > 0 then assert(c:feed(out)) end
    if cdone and sdone then return c, s end
  end
  error("engine handshake did not finish")
end

function roles.engine_hs(cert, key, ca, proto, count, warm)
  count, warm = tonumber(count), tonumber(warm)
  local scfg, ccfg = engine_configs(cert, key, ca, proto)
  local ok, cpu0, wall0 = 0, P.cpu(), P.wall()
  for i = 1, count + warm do
    if i == warm + 1 then cpu0, wall0 = P.cpu(), P.wall() end
    local c, s = pair_handshake(scfg, ccfg)
    c:close()
    s:close()
    if i > warm then ok = ok + 1 end
  end
  P.report("ok", ok, "fail", 0, "cpu", P.cpu() - cpu0, "wall", P.wall() - wall0)
end

function roles.engine_hold(cert, key, ca, proto, n, warm)
  n, warm = tonumber(n), tonumber(warm)
  local scfg, ccfg = engine_configs(cert, key, ca, proto)
  local held, rss0 = {}, 0
  for i = 1, n + warm do
    if i == warm + 1 then
      collectgarbage("collect")
      rss0 = P.rss()
    end
    local c, s = pair_handshake(scfg, ccfg)
    held[#held + 1] = c
    held[#held + 1] = s
  end
  collectgarbage("collect")
  P.report("held", n, "pair_kib", P.rss() - rss0)
end

-- N sequential GETs with tls.https (keep-alive connections from its pool).
function roles.https_get(url, n, trust)
  local https = require "tls.https"
  local opts = client_opts("tlsv1.2,tlsv1.3", trust)
  opts.protocols = nil
  local cpu0, wall0, bytes = P.cpu(), P.wall(), 0
  for _ = 1, tonumber(n) do
    local res, err = https.get(url, opts)
    if not res or res.status ~= 200 then error("GET " .. url .. ": " .. tostring(err or res.status)) end
    bytes = bytes + #res.body
  end
  P.report("gets", tonumber(n), "bytes", bytes, "cpu", P.cpu() - cpu0, "wall", P.wall() - wall0)
end

local by_name = {}
for name, f in pairs(roles) do by_name[name:gsub("_", "-")] = f end
P.main(by_name, arg)
