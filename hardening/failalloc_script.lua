-- The session hardening/failalloc.c runs with failing allocations. This chunk
-- runs unarmed (loading the modules, reading the PEM files, one warm-up
-- session so lazily loaded helpers are in place) and returns ops(), which
-- runs armed. PEM files: $FAILALLOC_PKI/server.{crt,key} (make fuzz-pki).
local tls = require "tls"
local E = require "support.engines" -- the specs' engine pump (spec/ is on LUA_PATH)
local dir = os.getenv("FAILALLOC_PKI") or "build/fuzz/pki"
local function read(p) local f = assert(io.open(p, "rb")) local s = f:read("*a") f:close() return s end
local crt, key = read(dir .. "/server.crt"), read(dir .. "/server.key")

local core_base64 = tls.core.base64_decode

-- A client and a server over a real loopback connection, both non-blocking.
local function loopback(scfg, ccfg)
  local core = tls.core
  local l = assert(core.listen("127.0.0.1", "0"))
  local _, port = l:getsockname()
  local server = assert(core.server(scfg))
  local c = assert(core.client(ccfg, "localhost", true))
  assert(c:connect("127.0.0.1", tostring(port), 5))
  c:settimeout(0)
  local s = assert(l:accept(server, 5))
  s:settimeout(0)
  local okc, oks
  for _ = 1, 100000 do
    okc = okc or c:handshake()
    oks = oks or s:handshake()
    if okc and oks then break end
  end
  assert(okc and oks, "loopback handshake did not finish")
  assert(c:send("ping\n"))
  local line
  for _ = 1, 100000 do
    line = s:receive("*l")
    if line then break end
  end
  assert(line == "ping")
  c:close()
  s:close()
  l:close()
end

local function ops()
  local bad, err
  local scfg = assert(tls.config{ cert = crt, key = key, alpn = { "h2", "http/1.1" } })
  local ccfg = assert(tls.config{ ca = crt, alpn = { "http/1.1" } })
  local s = assert(tls.engine{ config = scfg, mode = "server" })
  local c = assert(tls.engine{ config = ccfg, servername = "localhost" })
  assert(E.handshake(c, s))
  assert(c:send("hello\n"))
  s:feed(c:drain())
  assert(s:receive("*l") == "hello")
  local big = ("0123456789abcdef"):rep(2500)
  assert(s:send(big) == #big)
  c:feed(s:drain())
  assert(c:receive(#big) == big)
  local info = assert(c:info())
  assert(info.alpn == "http/1.1")
  assert(c:peer().chain_pem)
  assert(tostring(c))
  -- keypairs from files and from text; an SNI pair list
  local kp = assert(tls.config{ cert_file = dir .. "/server.crt", key_file = dir .. "/server.key",
    keypairs = { { cert = crt, key = key } } })
  assert(kp:has_keypair())
  -- failures of the world come back as nil, message
  bad, err = tls.config{ cert_file = dir .. "/server.crt", key_file = dir .. "/server.crt" }
  assert(bad == nil and err)
  bad, err = tls.config{ keypairs = { { cert_file = dir .. "/server.crt" } } }
  assert(bad == nil and err)
  bad, err = tls.config{ cert = crt, key = "not a key" }
  assert(bad == nil and err)
  bad, err = tls.config{ ca_file = "/nonexistent/ca.pem" }
  assert(bad == nil and err)
  -- misuse raises
  assert(not pcall(tls.config, { no_such_option = 1 }))
  -- tls.tofu's private files: a descriptor opened by replace_file never
  -- outlives a failed allocation (its template is allocated first)
  assert(tls.core.mkdir(dir .. "/files"))
  assert(tls.core.replace_file(dir .. "/files/pins", "pin\n"))
  bad, err = tls.core.replace_file(dir .. "/no-such-dir/pins", "pin\n")
  assert(bad == nil and err)
  -- libcrypto checks for tls.policy (src/x509.c) and the base64 decoder
  local der = assert(core_base64(crt:match("%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-(.-)%-%-%-%-%-END")))
  assert(tls.core.x509_issued(der, der))
  assert(tls.core.x509_anchor(ccfg, der) == der)
  assert(tls.core.x509_issued("junk", der) == false)
  assert(#tls.core.sha256(big) == 32)
  assert(core_base64("not base64!") == nil)
  loopback(scfg, ccfg)
  c:close()
  s:feed(c:drain())
  local line, rerr = s:receive("*l")
  assert(line == nil and rerr == "closed")
  s:close()
  assert(s:close())
end

ops()  -- warm-up, unarmed
return ops
