-- Mutual TLS: the client must show a certificate from rootA.
local socket = require("socket")
local ssl    = require("ssl")

local params = {
  mode = "server",
  protocol = "any",
  key = "../certs/serverAkey.pem",
  certificate = "../certs/serverA.pem",
  cafile = "../certs/rootA.pem",
  verify = { "peer", "fail_if_no_peer_cert" },
  options = { "all", "no_sslv3" },
}

local server = socket.tcp()
server:setoption("reuseaddr", true)
assert(server:bind("127.0.0.1", tonumber(arg[1]) or 8888))
server:listen()
local peer = server:accept()
peer = assert(ssl.wrap(peer, params))
assert(peer:dohandshake())
local cert = peer:getpeercertificate()
for _, entry in ipairs(cert:subject()) do
  print("client", entry.name, entry.oid, entry.value)
end
print("verified", (peer:getpeerverification()))
peer:send("hello, " .. cert:subject()[1].value .. "\n")
peer:close()
