-- HAProxy services that fetch over TLS with lua-tls, from a core.tcp()
-- socket (HAProxy 2.6 links Lua 5.3: load the Lua 5.3 build of the module).
--
--   global
--     lua-load examples/haproxy/tls_fetch.lua
--   frontend ...
--     http-request use-service lua.tls_over  if { path_beg /over }
--     http-request use-service lua.tls_https if { path_beg /https }
--
-- GET /over?port=P&path=/x     tls.over(tls.transport.haproxy(sock)) by hand
-- GET /https?port=P&path=/x    tls.https.get with a transport function
-- (upstream 127.0.0.1:P; optional name=servername, default localhost,
-- timeout=seconds, default LUA_TLS_TIMEOUT or 10, and for /https times=N).
-- The environment says where things are: LUA_TLS_ROOT (the source tree),
-- LUA_TLS_CPATH (the 5.3 build, default $LUA_TLS_ROOT/build/5.3/?.so) and
-- LUA_TLS_CA (a CA file for the upstream; default: the system's store).

local root = os.getenv("LUA_TLS_ROOT") or "."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("LUA_TLS_CPATH") or (root .. "/build/5.3/?.so")) .. ";" .. package.cpath

local tls = require "tls"

local CA = os.getenv("LUA_TLS_CA")
local TIMEOUT = tonumber(os.getenv("LUA_TLS_TIMEOUT") or "") or 10

local function query(applet)
  local q = {}
  for k, v in (applet.qs or ""):gmatch("([^&=]+)=([^&]*)") do q[k] = v end
  return tonumber(q.port), q.path or "/", q.name or "localhost", tonumber(q.timeout) or TIMEOUT,
    tonumber(q.times) or 1
end

local function answer(applet, status, body)
  applet:set_status(status)
  applet:add_header("content-type", "application/octet-stream")
  applet:add_header("content-length", tostring(#body))
  applet:start_response()
  applet:send(body)
end

-- A connected core.tcp() socket as a tls.over transport.
local PIECE = tonumber(os.getenv("LUA_TLS_PIECE") or "")

local function connect(host, port, timeout)
  local sock = core.tcp()
  local t = tls.transport.haproxy(sock, { piece = PIECE })
  t:settimeout(timeout or TIMEOUT)  -- (the transport's bounds: HAProxy raises past INT_MAX ms)
  local ok, err = sock:connect(host, port)
  if not ok then return nil, "connect: " .. tostring(err) end
  return t
end

core.register_service("tls_over", "http", function(applet)
  local port, path, name, timeout = query(applet)
  local t, err = connect("127.0.0.1", port)
  if not t then return answer(applet, 502, "error: " .. err .. "\n") end
  local c
  c, err = tls.over(t, { servername = name, ca_file = CA, timeout = timeout })
  if not c then return answer(applet, 502, "error: " .. err .. "\n") end
  local ok
  ok, err = c:handshake()
  if ok then ok, err = c:send("GET " .. path .. " HTTP/1.0\r\nHost: " .. name .. "\r\n\r\n") end
  local response, partial
  if ok then response, err, partial = c:receive("*a") end
  c:close()
  if not response and err == "truncated" then response = partial end
  if not response then return answer(applet, 502, "error: " .. tostring(err) .. "\n") end
  local head_end = response:find("\r\n\r\n", 1, true)
  answer(applet, 200, head_end and response:sub(head_end + 4) or response)
end)

-- (times=N fetches N times: the connection is kept for the next one, and
-- the answer's X-Reused header says how often one was reused)
core.register_service("tls_https", "http", function(applet)
  local port, path, name, timeout, times = query(applet)
  local reused = tls.https.pool_stats().reused
  local res, err
  for _ = 1, times do
    res, err = tls.https.get("https://127.0.0.1:" .. port .. path, {
      servername = name, ca_file = CA, timeout = timeout,
      transport = function(host, p, opts) return connect(host, p, opts.timeout) end,
    })
    if not res then return answer(applet, 502, "error: " .. tostring(err) .. "\n") end
  end
  applet:add_header("x-reused", tostring(tls.https.pool_stats().reused - reused))
  answer(applet, 200, res.body)
end)
