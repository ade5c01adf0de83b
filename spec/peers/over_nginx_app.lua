-- Handlers for spec/over_nginx_spec.lua, run inside nginx's lua module
-- (content_by_lua_block { require("peers.over_nginx_app").X() }). Each
-- fetches over TLS from an upstream named by the query string and answers
-- the body, or 502 with "error: <message>" so the spec sees the error words.
local tls = require "tls"

local app = {}

local function args()
  local a = ngx.req.get_uri_args()
  return {
    port = tonumber(a.port), path = a.path or "/", ca = a.ca, name = a.name or "localhost",
    timeout = tonumber(a.timeout) or 10,
  }
end

local function fail(err)
  ngx.status = 502
  ngx.say("error: ", tostring(err))
  return ngx.exit(502)
end

-- The body of an HTTP/1.0 response read to the end of the stream.
local function body_of(response)
  local head_end = response:find("\r\n\r\n", 1, true)
  if not head_end then return nil, "no response head in " .. #response .. " bytes" end
  return response:sub(head_end + 4)
end

-- /over: tls.over(tls.transport.ngx(cosocket)), a GET by hand.
function app.over()
  local a = args()
  local sock = ngx.socket.tcp()
  sock:settimeout(a.timeout * 1000)
  local ok, err = sock:connect("127.0.0.1", a.port)
  if not ok then return fail("connect: " .. err) end
  local c
  c, err = tls.over(tls.transport.ngx(sock), { servername = a.name, ca_file = a.ca,
    timeout = a.timeout })
  if not c then return fail(err) end
  ok, err = c:handshake()
  if not ok then c:close(); return fail(err) end
  ok, err = c:send("GET " .. a.path .. " HTTP/1.0\r\nHost: " .. a.name .. "\r\n\r\n")
  if not ok then c:close(); return fail(err) end
  local response, rerr, partial = c:receive("*a")
  c:close()
  if not response then
    -- a peer that closes without close_notify ends the stream all the same
    if rerr == "truncated" then response = partial else return fail(rerr) end
  end
  local body
  body, err = body_of(response)
  if not body then return fail(err) end
  ngx.print(body)
end

-- /https: tls.https.get, which picks cosockets by itself inside nginx.
function app.https()
  local a = args()
  local res, err = tls.https.get("https://127.0.0.1:" .. a.port .. a.path, {
    ca_file = a.ca, servername = a.name, timeout = a.timeout,
  })
  if not res then return fail(err) end
  ngx.header["X-Transport"] = tls.transport.here()
  ngx.print(res.body)
end

-- /upgrade?cert=F&key=F: the server side inside nginx. The client asks to
-- switch the connection to TLS (RFC 2817's Upgrade), gets 101, and this
-- handler runs tls.over in server mode on the raw request socket
-- (ngx.req.socket(true)), then answers each line upper-cased until "quit".
function app.upgrade()
  local a = ngx.req.get_uri_args()
  local sock = assert(ngx.req.socket(true))
  sock:settimeout(10000)
  assert(sock:send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: TLS/1.2\r\n"
    .. "Connection: Upgrade\r\n\r\n"))
  local c = assert(tls.over(tls.transport.ngx(sock), { mode = "server",
    cert_file = a.cert, key_file = a.key, timeout = 10 }))
  local ok, err = c:handshake()
  if not ok then
    ngx.log(ngx.ERR, "upgrade: handshake: ", err)
    return ngx.exit(ngx.ERROR)
  end
  while true do
    local line = c:receive("*l")
    if not line or line == "quit" then break end
    c:send(line:upper() .. "\n")
  end
  c:close()
end

return app
