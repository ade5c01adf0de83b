-- What the server's certificate says, through LuaSec's x509 methods.
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
assert(peer:dohandshake())
local cert = peer:getpeercertificate()
print("sha256", cert:digest("sha256"))
print("serial", cert:serial())
print("notbefore", cert:notbefore())
print("notafter", cert:notafter())
print("valid now", cert:validat(os.time()))
for _, entry in ipairs(cert:issuer()) do print("issuer", entry.name, entry.value) end
local san = cert:extensions()["2.5.29.17"]
for _, name in ipairs(san.dNSName) do print("dns", name) end
for _, ip in ipairs(san.iPAddress) do print("ip", ip) end
local _, keytype, bits = cert:pubkey()
print("key", keytype, bits)
print("same as loaded", ssl.loadcertificate(cert:pem()):digest("sha256") == cert:digest("sha256"))
print("chain", #peer:getpeerchain())
print(peer:receive("*l"))
peer:close()
