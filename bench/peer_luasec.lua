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

-- Wraps a connected socket and handshakes: the conn, or nil, err.
local function handshake(s, ctx, servername)
  s:setoption("tcp-nodelay", true)  -- here: a master socket refuses it before connect
  local conn = assert(ssl.wrap(s, ctx))
  if servername then conn:sni(servername) end
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
  return handshake(s, ctx, "localhost")
end

-- accept and connect as the peerlib loops take them
local function acceptor(port, cert, key, proto)
  local ctx = server_ctx(cert, key, proto)
  local srv = assert(socket.bind("127.0.0.1", tonumber(port), 1024))
  P.ready()
  return function()
    local s, err = srv:accept()
    if not s then return nil, err end
    return handshake(s, ctx)
  end
end

local function connector(host, port, proto, trust)
  local ctx = client_ctx(proto, trust)
  return function() return connect(host, port, ctx) end
end

local roles = {}

function roles.server_hs(port, cert, key, proto, count, warm)
  P.server_hs(acceptor(port, cert, key, proto), count, warm)
end

-- no client session resumption in LuaSec
local function facts(conn)
  local info = conn:info()
  return info.protocol, info.cipher, false
end

function roles.client_hs(host, port, proto, count, warm, trust)
  P.client_hs(connector(host, port, proto, trust), facts, count, warm, true)
end

function roles.bulk_server(port, cert, key, proto, conns)
  local accept = acceptor(port, cert, key, proto)
  for _ = 1, tonumber(conns) do
    local conn = accept()
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
  P.hold_server(acceptor(port, cert, key, proto))
end

function roles.hold_client(host, port, proto, n, warm, trust, server)
  P.hold_client(connector(host, port, proto, trust), n, warm, server)
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
