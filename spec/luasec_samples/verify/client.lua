local socket = require("socket")
local ssl    = require("ssl")

local params = {
  mode = "client",
  protocol = "any",
  key = "../certs/clientAkey.pem",
  certificate = "../certs/clientA.pem",
  cafile = "../certs/rootA.pem",
  verify = "peer",
  options = "all",
}

local peer = socket.tcp()
assert(peer:connect("127.0.0.1", tonumber(arg[1]) or 8888))
peer = assert(ssl.wrap(peer, params))
assert(peer:dohandshake())
print(peer:receive("*l"))
print("verified", (peer:getpeerverification()))
peer:close()
