-- A TLS server on the module whose per-connection behaviour comes from the
-- spec: lua5.4 scripted_server.lua PORT CERT KEY HANDLER [OPTS]. HANDLER is
-- Lua source returning function(conn, tls); OPTS is a Lua table literal of
-- extra listen options. Serves connections one at a time, forever.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = package.cpath .. ";build/?.so" -- after LUA_CPATH: make test-libressl sets it
local tls = require "tls"
local port, cert, key, handler_src, extra = arg[1], arg[2], arg[3], arg[4], arg[5]
local handler = assert((loadstring or load)(handler_src, "=handler"))()
local opts = { cert_file = cert, key_file = key }
if extra then
  for k, v in pairs(assert((loadstring or load)("return " .. extra))()) do opts[k] = v end
end
local l = assert(tls.listen("127.0.0.1", port, opts))
io.stdout:setvbuf("line")
print("READY")
while true do
  local conn, err = l:accept()
  if conn then
    conn:settimeout(10)
    local ok, herr = pcall(handler, conn, tls)
    if not ok then print("handler failed: " .. tostring(herr)) end
    conn:close()
  else
    print("accept failed: " .. tostring(err))
  end
end
