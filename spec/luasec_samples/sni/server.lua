-- Two certificates; the client's server name picks one.
local socket = require("socket")
local ssl    = require("ssl")

local function params(name)
  return {
    mode = "server",
    protocol = "any",
    key = "../certs/" .. name .. "key.pem",
    certificate = "../certs/" .. name .. ".pem",
    cafile = "../certs/rootA.pem",
    verify = "none",
    options = "all",
  }
end

local ctxA = assert(ssl.newcontext(params("serverA")))
local ctxAA = assert(ssl.newcontext(params("serverAA")))

local server = socket.tcp()
server:setoption("reuseaddr", true)
assert(server:bind("127.0.0.1", tonumber(arg[1]) or 8888))
server:listen()
local conn = server:accept()
conn = assert(ssl.wrap(conn, ctxA))
conn:sni({ ["servera.test"] = ctxA, ["serveraa.test"] = ctxAA }, true)
assert(conn:dohandshake())
print("sni", conn:getsniname())
conn:send("one line\n")
conn:close()
