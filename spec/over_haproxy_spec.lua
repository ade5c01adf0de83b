-- tls.over inside real HAProxy (Debian's 2.6, Lua 5.3): the services of
-- examples/haproxy/tls_fetch.lua, loaded by examples/haproxy/haproxy.cfg,
-- fetch over TLS from a core.tcp() socket (tls.transport.haproxy) from
-- openssl s_server -WWW on loopback, with the default policy.
local pki = require "support.pki"
local peers = require "support.peers"
local proc = require "support.proc"

local ROOT = os.getenv("PWD")

-- The Lua 5.3 build of the module: OVER_LUA53_CPATH, or build/5.3
-- (make LUA_VERSION=5.3 build).
local function lua53_cpath()
  local cpath = os.getenv("OVER_LUA53_CPATH") or (ROOT .. "/build/5.3/?.so")
  local f = io.open((cpath:gsub("%?", "tls/core")), "rb")
  if not f then return nil end
  f:close()
  return cpath
end

local function available()
  if not os.execute("command -v haproxy >/dev/null 2>&1") then
    return false, "haproxy is not installed"
  end
  if require("tls.core").library.name == "LibreSSL" then
    -- doc/libraries.md; spec/library_spec.lua checks the refusal
    return false, "a module on LibreSSL cannot load inside HAProxy, which loaded OpenSSL 3 first"
  end
  if not lua53_cpath() then
    return false, "the Lua 5.3 build of the module is missing (make LUA_VERSION=5.3 build)"
  end
  return true
end

local function sh_out(cmd) return (proc.run(cmd)) end

describe("tls.over inside HAProxy (core.tcp(), Lua 5.3)", function()
  local ok, why = available()
  if not ok then
    pending("HAProxy with lua-tls is not usable here: " .. why)
    return
  end

  local hap, wwws, cn_only, www, own

  local function get(path, args)
    local q = {}
    for k, v in pairs(args) do q[#q + 1] = k .. "=" .. tostring(v) end
    local out = sh_out(("curl -s -m 60 -w '\\n%%{http_code}' 'http://127.0.0.1:%d%s?%s'")
      :format(hap.port, path, table.concat(q, "&")))
    local body, code = out:match("^(.*)\n(%d+)$")
    return tonumber(code), body
  end

  setup(function()
    pki.setup()
    www = pki.dir .. "/www"
    os.execute("mkdir -p " .. www .. " && printf 'hello through haproxy\\n' > " .. www
      .. "/hello.txt && head -c 500000 /dev/urandom > " .. www .. "/half.bin && chmod -R a+rX "
      .. pki.dir)
    wwws = peers.s_server_www(pki.server, www)
    cn_only = peers.s_server_www(pki.cn_only, www)
    -- the module's keep-alive HTTPS server (s_server -WWW closes after each answer)
    own = peers.lua_server("https_server.lua", pki.server)
    local port = proc.free_port()
    hap = proc.start(("env LUA_TLS_ROOT=%s LUA_TLS_CPATH='%s' LUA_TLS_CA=%s LISTEN_PORT=%d "
      .. "haproxy -db -f %s/examples/haproxy/haproxy.cfg"):format(ROOT, lua53_cpath(),
      pki.ca.cert, port, ROOT), { port = port })
    hap.port = port
  end)

  teardown(function()
    -- (each one that started, even when setup failed half way)
    for _, h in pairs { hap or false, wwws or false, cn_only or false, own or false } do
      if h then h.stop() end
    end
    pki.cleanup()
  end)

  it("fetches through tls.over(tls.transport.haproxy(core.tcp()))", function()
    local code, body = get("/over", { port = wwws.port, path = "/hello.txt" })
    assert.equal(200, code)
    assert.equal("hello through haproxy\n", body)
  end)

  it("fetches through tls.https.get with a transport function over core.tcp()", function()
    local code, body = get("/https", { port = wwws.port, path = "/hello.txt" })
    assert.equal(200, code)
    assert.equal("hello through haproxy\n", body)
  end)

  it("brings a 500 KB body intact (it fits the example's 1 MiB tune.bufsize)", function()
    local file = pki.dir .. "/got.bin"
    os.execute(("curl -s -m 60 -o %s 'http://127.0.0.1:%d/over?port=%d&path=/half.bin'")
      :format(file, hap.port, wwws.port))
    assert.equal(sh_out("sha256sum < " .. www .. "/half.bin"), sh_out("sha256sum < " .. file))
  end)

  it("takes a timeout of any size: past HAProxy's INT_MAX milliseconds, and below a second", function()
    for _, t in ipairs { 1e10, 1e300, 0.5 } do
      for _, path in ipairs { "/over", "/https" } do
        local code, body = get(path, { port = wwws.port, path = "/hello.txt", timeout = t })
        assert.equal(200, code, path .. " " .. t .. ": " .. tostring(body))
        assert.equal("hello through haproxy\n", body)
      end
    end
  end)

  it("reports an upstream that never answers as a timeout, both ways", function()
    -- (a receive that times out ends HAProxy's socket, which then says
    -- "connection closed.": it read as the peer's close)
    local stall = assert(require("socket").bind("127.0.0.1", 0))
    local _, port = stall:getsockname()
    for _, path in ipairs { "/over", "/https" } do
      local code, body = get(path, { port = port, path = "/hello.txt", timeout = 1 })
      assert.equal(502, code)
      assert.equal("error: timeout\n", body)
    end
    stall:close()
  end)

  it("keeps a connection for the next request of the same service (not probed: it cannot be)", function()
    local out = sh_out(("curl -s -m 60 -D - 'http://127.0.0.1:%d/https?port=%d&path=/hello.txt&times=3'")
      :format(hap.port, own.port))
    assert.matches("^HTTP/1.1 200", out)
    assert.matches("\r\nx%-reused: 2\r\n", out)
  end)

  it("reports a name the certificate does not carry as a verify: error", function()
    local code, body = get("/over", { port = wwws.port, path = "/hello.txt", name = "alt.test" })
    assert.equal(502, code)
    assert.matches("^error: verify: ", body)
  end)

  it("applies the default policy (a leaf without subjectAltName is refused)", function()
    for _, path in ipairs { "/over", "/https" } do
      local code, body = get(path, { port = cn_only.port, path = "/hello.txt" })
      assert.equal(502, code)
      assert.matches("^error: policy: require_san", body)
    end
  end)
end)
