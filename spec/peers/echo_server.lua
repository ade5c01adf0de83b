-- A line echo server on the module, for client specs: lua5.4 echo_server.lua
-- PORT CERT KEY [extra options as Lua table literal]. Each client gets its
-- lines back until it sends "quit" or closes; "info" returns the server's view.
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = package.cpath .. ";build/?.so" -- after LUA_CPATH: make test-libressl sets it
local port, cert, key, extra = arg[1], arg[2], arg[3], arg[4]

local function echo(conn)
  while true do
    local line = conn:receive("*l")
    if not line or line == "quit" then return end
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
end

require "support.serve_loop" (port, cert, key, extra, echo)
