-- A line echo server on the module, for client specs: lua5.4 echo_server.lua
-- PORT CERT KEY [extra options as Lua table literal]. Each client gets its
-- lines back until it sends "quit" or closes; "info" returns the server's view.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = package.cpath .. ";build/?.so" -- after LUA_CPATH: make test-libressl sets it
local tls = require "tls"
local port, cert, key, extra = arg[1], arg[2], arg[3], arg[4]
local opts = { cert_file = cert, key_file = key }
if extra then
  for k, v in pairs(assert((loadstring or load)("return " .. extra))()) do opts[k] = v end
end
local l = assert(tls.listen("127.0.0.1", port, opts))
io.stdout:setvbuf("line")
print("READY")
while true do
  local conn, err = l:accept()
  if not conn then
    print("accept failed: " .. tostring(err))
  else
    conn:settimeout(10)
    while true do
      local line, rerr = conn:receive("*l")
      if not line then break end
      if line == "quit" then break end
      if line == "info" then
        local i = conn:info()
        local p = conn:peer()
        line = ("%s %s alpn=%s sni=%s peer=%s"):format(i.version, i.cipher, tostring(i.alpn),
          tostring(i.servername), p and p.subject or "none")
      elseif line:match("^bulk %d+$") then
        local n = tonumber(line:match("%d+"))
        local data = conn:receive(n)
        conn:send(data)
        line = nil
      end
      if line then conn:send(line .. "\n") end
    end
    conn:close()
  end
end
