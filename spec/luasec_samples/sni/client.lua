local socket = require("socket")
local ssl    = require("ssl")

local params = {
  mode = "client",
  protocol = "any",
  cafile = "../certs/rootA.pem",
  verify = "peer",
  options = "all",
}

local conn = socket.tcp()
assert(conn:connect("127.0.0.1", tonumber(arg[1]) or 8888))
conn = assert(ssl.wrap(conn, params))
conn:sni("serveraa.test")
assert(conn:dohandshake())
local cert = conn:getpeercertificate()
for _, entry in ipairs(cert:subject()) do print(entry.name, entry.value) end
print(conn:receive("*l"))
conn:close()
