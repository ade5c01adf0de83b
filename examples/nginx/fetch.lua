-- nginx handlers (content_by_lua_file) that fetch over TLS with lua-tls on
-- nginx cosockets: the worker serves other requests while these wait.
--   /fetch?url=https://host:port/path   tls.https.get (cosockets by itself)
--   /over?port=P&path=/x                tls.over(tls.transport.ngx(sock)) by hand
-- $upstream_ca (set in nginx.conf) names the CA file that verifies the
-- upstream; empty means the system's trust store.
local tls = require "tls"

local ca = ngx.var.upstream_ca
if ca == "" then ca = nil end

local function fail(err)
  ngx.status = 502
  ngx.say("error: ", tostring(err))
  return ngx.exit(502)
end

if ngx.var.uri == "/fetch" then
  local res, err = tls.https.get(ngx.var.arg_url or "", { ca_file = ca, timeout = 10 })
  if not res then return fail(err) end
  ngx.header["X-Upstream-Status"] = res.status
  return ngx.print(res.body)
end

-- /over: the same by hand, on a cosocket
local port = tonumber(ngx.var.arg_port)
if not port then return fail("give ?port=N") end
local sock = ngx.socket.tcp()
sock:settimeout(10000)
local ok, err = sock:connect("127.0.0.1", port)
if not ok then return fail("connect: " .. err) end
local c
c, err = tls.over(tls.transport.ngx(sock), { servername = "localhost", ca_file = ca, timeout = 10 })
if not c then return fail(err) end
ok, err = c:send("GET " .. (ngx.var.arg_path or "/") .. " HTTP/1.0\r\nHost: localhost\r\n\r\n")
if not ok then c:close(); return fail(err) end   -- (send ran the handshake and the policy)
local response, rerr, partial = c:receive("*a")
c:close()
if not response and rerr == "truncated" then response = partial end
if not response then return fail(rerr) end
ngx.print((response:gsub("^.-\r\n\r\n", "", 1)))
