local socket = require("socket")
local ssl    = require("ssl")

local params = {
  mode = "client",
  protocol = "tlsv1_2",
  cafile = "../certs/rootA.pem",
  verify = "peer",
  options = "all",
}

local peer = socket.tcp()
assert(peer:connect("127.0.0.1", tonumber(arg[1]) or 8888))
peer = assert(ssl.wrap(peer, params))
assert(peer:dohandshake())
print(peer:receive("*l"))
print(peer:info("protocol"))
peer:close()
