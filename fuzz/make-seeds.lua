-- Regenerate the libFuzzer seed corpora in fuzz/corpus/ from real engine
-- traffic: ClientHellos and server flights captured with drain(), whole
-- handshake streams, and PEM inputs for the config harness.
--   LUA_PATH=... LUA_CPATH=build/?.so;; lua5.4 fuzz/make-seeds.lua
-- The keys here are throwaway test keys made for the seeds, nothing else.
local core = require "tls.core"

local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p " .. tmp))
local function sh(cmd) assert(os.execute(cmd .. " >/dev/null 2>&1"), cmd) end
local function read(p) local f = assert(io.open(p, "rb")) local s = f:read("*a") f:close() return s end
local function write(p, s) local f = assert(io.open(p, "wb")) f:write(s) f:close() end

sh(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 "
  .. "-subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout %s/ec.key -out %s/ec.crt"):format(tmp, tmp))
sh(("openssl req -x509 -newkey rsa:2048 -nodes -days 3650 "
  .. "-subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout %s/rsa.key -out %s/rsa.crt"):format(tmp, tmp))
local ec_crt, ec_key = read(tmp .. "/ec.crt"), read(tmp .. "/ec.key")
local rsa_crt, rsa_key = read(tmp .. "/rsa.crt"), read(tmp .. "/rsa.key")

-- Run a handshake and one exchange; return each side's whole output and
-- each side's first flight.
local function session(protocols, crt, key)
  local srv = assert(core.server(assert(core.config{cert = crt, key = key,
    protocols = protocols, alpn = {"h2", "http/1.1"}})))
  local s = assert(srv:engine())
  local c = assert(core.client(assert(core.config{ca = crt, protocols = protocols,
    alpn = {"h2", "http/1.1"}}), "localhost", true))
  s:settimeout(0) c:settimeout(0)
  local cout, sout, cfirst, sfirst = {}, {}, nil, nil
  for _ = 1, 20 do
    local okc = c:handshake()
    local d = c:drain()
    if #d > 0 then cfirst = cfirst or d; cout[#cout + 1] = d; s:feed(d) end
    local oks = s:handshake()
    d = s:drain()
    if #d > 0 then sfirst = sfirst or d; sout[#sout + 1] = d; c:feed(d) end
    if okc and oks then break end
  end
  assert(c:send("GET / HTTP/1.1\r\n\r\n")); local d = c:drain(); cout[#cout + 1] = d; s:feed(d)
  assert(s:receive(4))
  assert(s:send("HTTP/1.1 200 OK\r\n\r\nhello")); d = s:drain(); sout[#sout + 1] = d; c:feed(d)
  assert(c:receive(4))
  c:close(); s:close()
  cout[#cout + 1] = c:drain(); sout[#sout + 1] = s:drain()
  return table.concat(cout), table.concat(sout), cfirst, sfirst
end

local root = "fuzz/corpus/"
for _, d in ipairs { "engine_server", "engine_client", "config" } do sh("mkdir -p " .. root .. d) end

local c13, s13, ch13, sh13 = session("tlsv1.3", ec_crt, ec_key)
local c12, s12, ch12, sh12 = session("tlsv1.2", ec_crt, ec_key)
local _, s12rsa, _, sh12rsa = session("tlsv1.2", rsa_crt, rsa_key)
local cboth = session(nil, ec_crt, ec_key)
write(root .. "engine_server/clienthello_tls13", ch13)
write(root .. "engine_server/clienthello_tls12", ch12)
write(root .. "engine_server/client_stream_tls13", c13)
write(root .. "engine_server/client_stream_tls12", c12)
write(root .. "engine_server/client_stream_default", cboth)
write(root .. "engine_server/http_request", "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
write(root .. "engine_client/serverflight_tls13", sh13)
write(root .. "engine_client/serverflight_tls12", sh12)
write(root .. "engine_client/serverflight_tls12_rsa", sh12rsa)
write(root .. "engine_client/server_stream_tls13", s13)
write(root .. "engine_client/server_stream_tls12", s12)
write(root .. "engine_client/server_stream_tls12_rsa", s12rsa)
write(root .. "engine_client/http_response", "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
write(root .. "config/ec_pair_and_ca", ec_crt .. "\0" .. ec_key .. "\0" .. ec_crt)
write(root .. "config/rsa_pair", rsa_crt .. "\0" .. rsa_key)
write(root .. "config/mismatched_pair", ec_crt .. "\0" .. rsa_key)
write(root .. "config/ca_only", "\0\0" .. ec_crt .. rsa_crt)
write(root .. "config/options", "\0\0\0\0\0ECDHE+AESGCM:ECDHE+CHACHA20\0X25519,P-256\0tlsv1.2,tlsv1.3")
write(root .. "config/pair_with_options", ec_crt .. "\0" .. ec_key .. "\0\0\0\0TLS_AES_128_GCM_SHA256\0P-256\0tlsv1.3")
sh("rm -rf " .. tmp)
print("seeds written under " .. root)
