local socket = require("socket")
local ssl    = require("ssl")

local params = {
  mode = "server",
  protocol = "tlsv1_2",
  key = "../certs/serverAkey.pem",
  certificate = "../certs/serverA.pem",
  verify = "none",
  options = "all",
  alpn = { "foo" },
}

local server = socket.tcp()
server:setoption("reuseaddr", true)
assert(server:bind("127.0.0.1", tonumber(arg[1]) or 8888))
server:listen()
local peer = server:accept()
peer = assert(ssl.wrap(peer, params))
assert(peer:dohandshake())
print("alpn", peer:getalpn())
peer:send("alpn test\n")
peer:close()
