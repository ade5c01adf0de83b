-- A small HTTPS/1.1 server on the module, for the tls.https specs:
--   lua5.4 spec/peers/https_server.lua PORT CERT KEY
-- One connection at a time, keep-alive with a short idle timeout (so a
-- second client connection waits at most that long). Every request gets
-- back what the server saw, one "key=value" per line:
--   method, path, length (body bytes), sha256 (of the body), te (chunked|none),
--   conn (connection serial number), req (request number on the connection),
--   sni (the name the client sent, or nil),
--   plus h-<name>=<value> for each request header.
-- /chunked?n=N answers with N bytes ("0123456789" repeated) sent chunked,
-- /close answers with "Connection: close" and closes.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = package.cpath .. ";build/?.so" -- after LUA_CPATH: make test-libressl sets it
local tls = require "tls"
local sha256 = require "tls.sha256"
local port, cert, key = arg[1], arg[2], arg[3]
local l = assert(tls.listen("127.0.0.1", port, { cert_file = cert, key_file = key,
  alpn = { "http/1.1" } }))
io.stdout:setvbuf("line")
print("READY")

local IDLE = 0.5

local function read_body(conn, hdr)
  if (hdr["transfer-encoding"] or ""):lower():find("chunked") then
    local parts = {}
    while true do
      local line = assert(conn:receive("*l"))
      local n = tonumber(line:match("^(%x+)"), 16)
      if n == 0 then
        repeat line = assert(conn:receive("*l")) until line == ""
        return table.concat(parts), "chunked"
      end
      parts[#parts + 1] = assert(conn:receive(n))
      assert(conn:receive("*l") == "")
    end
  end
  local n = tonumber(hdr["content-length"] or "0")
  if n == 0 then return "", "none" end
  return assert(conn:receive(n)), "none"
end

local serial = 0
while true do
  local conn = l:accept()
  if conn then
    serial = serial + 1
    local nreq, sni = 0, tostring(conn:info().servername)
    while true do
      conn:settimeout(IDLE)
      local line = conn:receive("*l")
      if not line then break end
      conn:settimeout(10)
      nreq = nreq + 1
      local method, path = line:match("^(%S+) (%S+) HTTP/1%.1$")
      local hdr, lines = {}, {}
      while true do
        local h = conn:receive("*l")
        if not h or h == "" then break end
        local name, value = h:match("^([^:]+):%s*(.*)$")
        hdr[name:lower()] = value
        lines[#lines + 1] = "h-" .. name:lower() .. "=" .. value
      end
      local ok, body, te = pcall(read_body, conn, hdr)
      if not ok then break end
      local close = path == "/close" or (hdr.connection or ""):lower() == "close"
      local extra = close and "Connection: close\r\n" or ""
      local n = path:match("^/chunked%?n=(%d+)$")
      if n then
        n = tonumber(n)
        conn:send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" .. extra .. "\r\n")
        local data = ("0123456789"):rep(math.floor(n / 10) + 1):sub(1, n)
        local sizes, i, k = { 1, 7, 4093, 16385, 100, 33333 }, 1, 0
        while i <= n do
          k = k % #sizes + 1
          local piece = data:sub(i, i + sizes[k] - 1)
          conn:send(("%x\r\n"):format(#piece) .. piece .. "\r\n")
          i = i + #piece
        end
        conn:send("0\r\nX-Trailer: yes\r\n\r\n")
      else
        local out = table.concat({ "method=" .. method, "path=" .. path,
          "length=" .. #body, "sha256=" .. sha256.hex(body), "te=" .. te,
          "conn=" .. serial, "req=" .. nreq, "sni=" .. sni, table.concat(lines, "\n") }, "\n") .. "\n"
        conn:send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
          .. #out .. "\r\n" .. extra .. "\r\n" .. out)
      end
      if close then break end
    end
    conn:settimeout(1)
    conn:close()
  end
end
