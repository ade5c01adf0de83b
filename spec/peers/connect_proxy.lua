-- A tiny HTTP CONNECT proxy on LuaSocket for the tls.https specs:
--   lua5.4 spec/peers/connect_proxy.lua PORT [USER:PASS]
-- Relays any number of tunnels at once with socket.select. With USER:PASS,
-- a CONNECT without the right Proxy-Authorization gets 407. Prints one line
-- per CONNECT: "TUNNEL host:port" or "DENIED host:port".
local socket = require "socket"
local mime_ok, mime = pcall(require, "mime")
local port, cred = tonumber(arg[1]), arg[2]
local server = assert(socket.bind("127.0.0.1", port))
server:settimeout(0)
io.stdout:setvbuf("line")
print("READY")

local expected = cred and ("Basic " .. (mime_ok and mime.b64(cred) or error("need mime")))
local peer = {}        -- socket -> the socket at the other end of its tunnel
local sockets = { server }

local function drop(s)
  local o = peer[s]
  peer[s] = nil
  if o then peer[o] = nil; o:close() end
  s:close()
  local keep = { server }
  for x in pairs(peer) do keep[#keep + 1] = x end
  sockets = keep
end

local function handshake(c)
  c:settimeout(5)
  local line = c:receive("*l")
  if not line then c:close(); return end
  local target = line:match("^CONNECT (%S+) HTTP/1%.[01]$")
  local auth
  while true do
    local h = c:receive("*l")
    if not h or h == "" then break end
    local name, value = h:match("^([^:]+):%s*(.*)$")
    if name and name:lower() == "proxy-authorization" then auth = value end
  end
  if not target then
    c:send("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    c:close()
    return
  end
  if expected and auth ~= expected then
    print("DENIED " .. target)
    c:send("HTTP/1.1 407 Proxy Authentication Required\r\n"
      .. "Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
    c:close()
    return
  end
  local host, tport = target:match("^%[?([^%]]+)%]?:(%d+)$")
  local u = socket.tcp()
  u:settimeout(5)
  if not host or not u:connect(host, tonumber(tport)) then
    c:send("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
    c:close()
    u:close()
    return
  end
  print("TUNNEL " .. target)
  c:send("HTTP/1.1 200 Connection established\r\n\r\n")
  c:settimeout(0)
  u:settimeout(0)
  peer[c], peer[u] = u, c
  sockets[#sockets + 1] = c
  sockets[#sockets + 1] = u
end

while true do
  local readable = socket.select(sockets, nil, 1)
  for _, s in ipairs(readable) do
    if s == server then
      local c = server:accept()
      if c then handshake(c) end
    elseif peer[s] then
      local data, err, part = s:receive(65536)
      data = data or part
      if data and #data > 0 then
        local o = peer[s]
        o:settimeout(10)
        o:send(data)
        o:settimeout(0)
      end
      if err == "closed" then drop(s) end
    end
  end
end
