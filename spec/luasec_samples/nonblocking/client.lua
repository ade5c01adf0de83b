-- A handshake driven by socket.select, as in LuaSec's wantread sample.
local socket = require("socket")
local ssl    = require("ssl")

local params = {
  mode = "client",
  protocol = "any",
  cafile = "../certs/rootA.pem",
  verify = "peer",
  options = "all",
}

local peer = socket.tcp()
assert(peer:connect("127.0.0.1", tonumber(arg[1]) or 8888))
peer = assert(ssl.wrap(peer, params))
peer:settimeout(0)
while true do
  local ok, err = peer:dohandshake()
  if ok then break end
  if err == "wantread" then socket.select({ peer }, nil)
  elseif err == "wantwrite" then socket.select(nil, { peer })
  else error(err) end
end
print("handshake done", peer:info("protocol") ~= nil)
peer:settimeout(10)
peer:send("ping\n")
print(peer:receive("*l"))
peer:close()
