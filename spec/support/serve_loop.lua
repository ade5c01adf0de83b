-- The loop of the module's own peer servers (spec/peers/echo_server.lua,
-- scripted_server.lua): listen on 127.0.0.1:port with the keypair and the
-- extra listen options (a Lua table literal, or nil), print READY, then
-- serve one connection at a time, forever, with handler(conn, tls). A
-- handler that raises is reported on stdout; the conn is closed after it.
local tls = require "tls"

return function(port, cert, key, extra, handler)
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
end
