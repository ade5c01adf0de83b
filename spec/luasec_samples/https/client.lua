-- ssl.https.request with a request table: LuaSec's TLS parameters beside
-- LuaSocket's http ones. The port is arg[1]; the server is an HTTPS server
-- with serverA's certificate.
local ltn12 = require("ltn12")
local https = require("ssl.https")

local body = {}
local one, code, headers, status = https.request{
  url = "https://127.0.0.1:" .. (arg[1] or "8888") .. "/sample?x=1",
  sink = ltn12.sink.table(body),
  protocol = "any",
  cafile = "../certs/rootA.pem",
  verify = "peer",
  options = "all",
}
print(one, code, status)
print("content-type", headers["content-type"])
body = table.concat(body)
print(body:match("method=[^\n]*"))
print(body:match("path=[^\n]*"))
