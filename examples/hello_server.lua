-- A minimal HTTPS server on the module: one connection at a time, blocking.
--   lua5.4 examples/hello_server.lua PORT CERT_FILE KEY_FILE
-- For many clients at once, see examples/https_server.lua (cqueues).
-- From a checkout, no install needed: the module is found next to this file
-- (built for this Lua: `make LUA_VERSION=...` builds into build/<version>/, 5.4 into build/).
local here = (arg and arg[0] or ""):match("^(.*)/") or "."
local lua_version = rawget(_G, "jit") and "jit" or _VERSION:match("%d+%.%d+")
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../build/" .. (lua_version == "5.4" and "" or lua_version .. "/") .. "?.so;"
  .. package.cpath
local tls = require "tls"

local port, cert_file, key_file = arg[1], arg[2], arg[3]
if not (port and cert_file and key_file) then
  io.stderr:write("usage: lua5.4 examples/hello_server.lua PORT CERT_FILE KEY_FILE\n")
  os.exit(2)
end

local listener = assert(tls.listen("127.0.0.1", port, {
  cert_file = cert_file, key_file = key_file, alpn = { "http/1.1" },
  timeout = 10,
}))
io.stdout:setvbuf("line")
print("listening on https://127.0.0.1:" .. select(2, listener:getsockname()))

while true do
  local conn, err = listener:accept()
  if not conn then
    io.stderr:write("client failed: ", err, "\n")
  else
    -- read the request head, answer, close
    repeat
      local line = conn:receive("*l")
    until not line or line == ""
    local body = ("Hello over %s with %s\n"):format(conn:info().version, conn:info().cipher)
    conn:send(("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
      .. "Connection: close\r\n\r\n%s"):format(#body, body))
    conn:close()
  end
end
