-- `make demo`: make a throwaway CA and server certificate, start
-- examples/hello_server.lua on it, fetch a page through the module with full
-- verification against that CA, and print what was negotiated.
-- From a checkout, no install needed: the module is found next to this file
-- (built for this Lua: `make LUA_VERSION=...` builds into build/<version>/, 5.4 into build/).
local here = (arg and arg[0] or ""):match("^(.*)/") or "."
local lua_version = rawget(_G, "jit") and "jit" or _VERSION:match("%d+%.%d+")
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../build/" .. (lua_version == "5.4" and "" or lua_version .. "/") .. "?.so;"
  .. package.cpath
-- the server runs on this same interpreter (arg's lowest index names it)
local interpreter = "lua5.4"
if arg then
  local i = -1
  while arg[i - 1] do i = i - 1 end
  interpreter = arg[i] or interpreter
end
local tls = require "tls"

local function sh(cmd)
  assert(os.execute("(" .. cmd .. ") >/dev/null 2>&1"), "demo: command failed: " .. cmd)
end

local dir = io.popen("mktemp -d /tmp/lua-tls-demo.XXXXXX"):read("*l")
local function cleanup(pid)
  if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
  os.execute("rm -rf " .. dir)
end

-- 1. a throwaway CA and a certificate for localhost, ECDSA P-256
sh(("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
  .. "-keyout ca.key -out ca.crt -days 1 -subj '/CN=lua-tls demo CA' "
  .. "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign"):format(dir))
sh(("cd %s && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
  .. "-keyout server.key -out server.csr -subj '/CN=localhost' && "
  .. "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext && "
  .. "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
  .. "-out server.crt -days 1 -extfile ext"):format(dir))

-- 2. the server, in the background, on a port the system picks
local probe = assert(tls.core.listen("127.0.0.1", "0"))
local _, port = probe:getsockname()
probe:close()
local pid = io.popen(("%s %s/hello_server.lua %d %s/server.crt %s/server.key "
  .. "> %s/server.log 2>&1 & echo $!"):format(interpreter, here, port, dir, dir, dir)):read("*l")

-- 3. fetch a page, verifying the chain and the name against the demo CA
local conn, err
for _ = 1, 50 do  -- the server needs a moment to start
  conn, err = tls.connect("localhost", port, { ca_file = dir .. "/ca.crt", alpn = { "http/1.1" }, timeout = 5 })
  if conn or not tostring(err):find("refused") then break end
  os.execute("sleep 0.1")
end
if not conn then
  cleanup(pid)
  io.stderr:write("demo: connection failed: ", tostring(err), "\n")
  os.exit(1)
end
conn:send("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
local response = conn:receive("*a")
local info, peer = conn:info(), conn:peer()
conn:close()
cleanup(pid)

print("fetched   https://localhost:" .. port .. "/")
print("status    " .. (response:match("^HTTP/1.1 (%d+ [^\r\n]*)") or "?"))
print("body      " .. (response:match("\r\n\r\n(.*)$") or ""):gsub("\n$", ""))
print("protocol  " .. info.version)
print("cipher    " .. info.cipher .. " (" .. info.cipher_strength .. " bits)")
print("alpn      " .. tostring(info.alpn))
print("peer      " .. peer.subject .. ", issued by " .. peer.issuer .. " (verified)")
