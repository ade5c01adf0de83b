-- The LuaSec peer for the benchmarks: the roles of bench/ctls.c, written the
-- way LuaSec's users write them (one ssl.newcontext, ssl.wrap per socket).
-- LuaSec has no in-memory engine and no client session resumption.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path
local P = require "peerlib"
local socket = require "socket"
local ssl = require "ssl"

local protocol = { ["tlsv1.2"] = "tlsv1_2", ["tlsv1.3"] = "tlsv1_3" }

local function server_ctx(cert, key, proto)
  return assert(ssl.newcontext {
    mode = "server", protocol = protocol[proto], certificate = cert, key = key,
    ciphers = P.CIPHERS, options = { "all" },
  })
end

-- TRUST as in ctls: insecure, path:DIR (capath), file:FILE (cafile)
local function client_ctx(proto, trust)
  local params = { mode = "client", protocol = protocol[proto], ciphers = P.CIPHERS,
    options = { "all" }, verify = "peer" }
  if trust == "insecure" then
    params.verify = "none"
  elseif trust:match("^path:") then
    params.capath = trust:sub(6)
  elseif trust:match("^file:") then
    params.cafile = trust:sub(6)
  else
    error("LuaSec has no default trust store; give path: or file:")
  end
  return assert(ssl.newcontext(params))
end

local function listen(port)
  local srv = assert(socket.bind("127.0.0.1", tonumber(port), 1024))
  P.ready()
  return srv
end

local function accept(srv, ctx)
  local s = srv:accept()
  if not s then return nil end
  s:setoption("tcp-nodelay", true)
  local conn = assert(ssl.wrap(s, ctx))
  conn:settimeout(10)
  local ok, err = conn:dohandshake()
  if not ok then
    conn:close()
    return nil, err
  end
  return conn
end

local function connect(host, port, ctx)
  local s = socket.tcp()
  local ok, err = s:connect(host, tonumber(port))
  if not ok then return nil, err end
  s:setoption("tcp-nodelay", true)  -- a master socket refuses it before connect
  local conn = assert(ssl.wrap(s, ctx))
  conn:sni("localhost")
  conn:settimeout(10)
  ok, err = conn:dohandshake()
  if not ok then
    conn:close()
    return nil, err
  end
  return conn
end

local roles = {}

function roles.server_hs(port, cert, key, proto, count, warm)
  count, warm = tonumber(count), tonumber(warm)
  local ctx = server_ctx(cert, key, proto)
  local srv = listen(port)
  local ok, fail, cpu0, wall0 = 0, 0, P.cpu(), P.wall()
  for i = 1, count + warm do
    if i == warm + 1 then cpu0, wall0 = P.cpu(), P.wall() end
    local conn = accept(srv, ctx)
    if conn then conn:close() end
    if i > warm then
      if conn then ok = ok + 1 else fail = fail + 1 end
    end
  end
  P.report("ok", ok, "fail", fail, "cpu", P.cpu() - cpu0, "wall", P.wall() - wall0)
end

function roles.client_hs(host, port, proto, count, warm, trust)
  count, warm = tonumber(count), tonumber(warm)
  local ctx = client_ctx(proto, trust)
  local ok, fail, cpu0, wall0 = 0, 0, P.cpu(), P.wall()
  local info
  for i = 1, count + warm do
    if i == warm + 1 then cpu0, wall0 = P.cpu(), P.wall() end
    local conn, err = connect(host, port, ctx)
    if conn then
      info = conn:info()
      conn:receive("*a")
      conn:close()
    elseif i == 1 then
      io.stderr:write("connect: ", tostring(err), "\n")
    end
    if i > warm then
      if conn then ok = ok + 1 else fail = fail + 1 end
    end
  end
  P.report("ok", ok, "fail", fail, "resumed", 0, "cpu", P.cpu() - cpu0,
    "wall", P.wall() - wall0, "version", info and info.protocol, "cipher", info and info.cipher)
end

function roles.bulk_server(port, cert, key, proto, conns)
  local ctx = server_ctx(cert, key, proto)
  local srv = listen(port)
  for _ = 1, tonumber(conns) do
    local conn = accept(srv, ctx)
    if conn then
      conn:settimeout(nil)
      P.bulk_serve(conn)
      conn:close()
    end
  end
end

function roles.bulk_client(host, port, proto, mode, total, chunk)
  total, chunk = tonumber(total), tonumber(chunk)
  local conn = assert(connect(host, port, client_ctx(proto, "insecure")))
  conn:settimeout(nil)
  P.bulk_write(conn, mode, total, chunk)
  conn:close()
end

function roles.hold_server(port, cert, key, proto)
  local ctx = server_ctx(cert, key, proto)
  local srv = listen(port)
  local held = {}
  while true do
    local conn = accept(srv, ctx)
    if conn then held[#held + 1] = conn end
  end
end

function roles.hold_client(host, port, proto, n, warm, trust, server)
  n, warm = tonumber(n), tonumber(warm)
  local ctx = client_ctx(proto, trust)
  local held, self0, srv0 = {}, 0, 0
  for i = 1, n + warm do
    if i == warm + 1 then
      P.sleep(0.3)
      collectgarbage("collect")
      self0, srv0 = P.rss(), P.rss(server)
    end
    held[i] = assert(connect(host, port, ctx))
  end
  P.sleep(0.3)
  collectgarbage("collect")
  P.report("held", n, "client_kib", P.rss() - self0, "server_kib", P.rss(server) - srv0)
end

-- N sequential GETs with ssl.https.request, verifying like the others.
function roles.https_get(url, n, trust)
  local https = require "ssl.https"
  local ltn12 = require "ltn12"
  local cpu0, wall0, bytes = P.cpu(), P.wall(), 0
  for _ = 1, tonumber(n) do
    local body = {}
    local req = { url = url, sink = ltn12.sink.table(body), verify = "peer" }
    if trust:match("^path:") then req.capath = trust:sub(6) else req.cafile = trust:sub(6) end
    local ok, code = https.request(req)
    if ok ~= 1 or code ~= 200 then error("GET " .. url .. ": " .. tostring(code)) end
    bytes = bytes + #table.concat(body)
  end
  P.report("gets", tonumber(n), "bytes", bytes, "cpu", P.cpu() - cpu0, "wall", P.wall() - wall0)
end

local by_name = {}
for name, f in pairs(roles) do by_name[name:gsub("_", "-")] = f end
P.main(by_name, arg)
