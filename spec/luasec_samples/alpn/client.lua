local socket = require("socket")
local ssl    = require("ssl")

local params = {
  mode = "client",
  protocol = "tlsv1_2",
  cafile = "../certs/rootA.pem",
  verify = "peer",
  options = "all",
  alpn = { "bar", "foo" },
}

local peer = socket.tcp()
assert(peer:connect("127.0.0.1", tonumber(arg[1]) or 8888))
peer = assert(ssl.wrap(peer, params))
assert(peer:dohandshake())
print("alpn", peer:getalpn())
print(peer:receive("*l"))
peer:close()
