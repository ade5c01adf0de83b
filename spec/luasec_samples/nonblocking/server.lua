local socket = require("socket")
local ssl    = require("ssl")

local params = {
  mode = "server",
  protocol = "any",
  key = "../certs/serverAkey.pem",
  certificate = "../certs/serverA.pem",
  verify = "none",
  options = "all",
}

local server = socket.tcp()
server:setoption("reuseaddr", true)
assert(server:bind("127.0.0.1", tonumber(arg[1]) or 8888))
server:listen()
local peer = server:accept()
peer = assert(ssl.wrap(peer, params))
peer:settimeout(0)
while true do
  local ok, err = peer:dohandshake()
  if ok then break end
  if err == "wantread" then socket.select({ peer }, nil)
  elseif err == "wantwrite" then socket.select(nil, { peer })
  else error(err) end
end
peer:settimeout(10)
print("server got", peer:receive("*l"))
peer:send("pong\n")
peer:close()
