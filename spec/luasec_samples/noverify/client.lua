-- verify = "none", named: no checks at all (what LuaSec does by default,
-- and what tls.luasec does only when asked).
local socket = require("socket")
local ssl    = require("ssl")

local params = {
  mode = "client",
  protocol = "any",
  verify = "none",
  options = "all",
}

local peer = socket.tcp()
assert(peer:connect("127.0.0.1", tonumber(arg[1]) or 8888))
peer = assert(ssl.wrap(peer, params))
assert(peer:dohandshake())
print("verified", (peer:getpeerverification()))
print(peer:receive("*l"))
peer:close()
