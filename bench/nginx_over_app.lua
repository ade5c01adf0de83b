-- Handlers for the nginx part of bench/sections/75_over.lua, run inside
-- nginx's lua module: the same loop through tls.over(tls.transport.ngx(sock))
-- and through the cosocket's own sslhandshake (OpenSSL in nginx's C), so the
-- two are measured side by side in one worker. Each answers "k=v" figures.
local tls = require "tls"

local app = {}
local cfg  -- one config per worker, as an OpenResty user would keep it

local function args()
  local a = ngx.req.get_uri_args()
  return a.mode, tonumber(a.port), tonumber(a.n), a.ca
end

-- A connected, handshaken stream: {receive = fn(max), close = fn}
local function open(mode, port, ca)
  local sock = ngx.socket.tcp()
  sock:settimeout(30000)
  assert(sock:connect("127.0.0.1", port))
  if mode == "ngx" then
    assert(sock:sslhandshake(nil, "localhost", true))
    return sock, function(max) return sock:receiveany(max) end, function() sock:close() end
  end
  cfg = cfg or assert(tls.config { ca_file = ca })
  local c = assert(tls.over(tls.transport.ngx(sock), { config = cfg, servername = "localhost",
    timeout = 30 }))
  assert(c:handshake())
  return c, function(max)
    local d, err, part = c:receive(max)
    if d then return d end
    if part and part ~= "" then return part end
    return nil, err
  end, function() c:close() end
end

local function clock()
  ngx.update_time()
  return ngx.now()
end

-- /hs?mode=over|ngx&port=P&n=N&ca=FILE: N handshakes, one after another.
-- cpu is the worker's CPU time over them (os.clock: the whole process, and
-- the bench runs one worker with no master), the client side alone.
function app.hs()
  local mode, port, n, ca = args()
  local t0, c0 = clock(), os.clock()
  for _ = 1, n do
    local _, _, close = open(mode, port, ca)
    close()
  end
  local cpu = os.clock() - c0
  ngx.say("handshakes=", n, " wall=", clock() - t0, " cpu=", cpu)
end

-- /dl?mode=over|ngx&port=P&n=BYTES&ca=FILE: GET /big.bin from s_server -WWW
function app.dl()
  local mode, port, _, ca = args()
  local conn, read, close = open(mode, port, ca)
  assert(conn:send("GET /big.bin HTTP/1.0\r\n\r\n"))
  local t0, bytes = clock(), 0
  while true do
    local d = read(65536)
    if not d then break end
    bytes = bytes + #d
  end
  local wall = clock() - t0
  close()
  ngx.say("bytes=", bytes, " wall=", wall)
end

return app
