-- tls.https through an HTTP CONNECT proxy (spec/peers/connect_proxy.lua,
-- LuaSocket, with basic auth) to nginx: opts.proxy, https_proxy /
-- HTTPS_PROXY / no_proxy from the environment, and TLS end to end.

local pki = require "support.pki"
local proc = require "support.proc"
local ngx = require "support.https_nginx"
local peers = require "support.peers"
local https = require "tls.https"
local tls = require "tls"

local function tunnels(h)
  local n = 0
  for _ in h.output():gmatch("TUNNEL ") do n = n + 1 end
  return n
end

describe("tls.https through a CONNECT proxy", function()
  local web, open_proxy, auth_proxy, base, ca

  setup(function()
    pki.setup()
    web = ngx.start(pki)
    base = "https://127.0.0.1:" .. web.port
    ca = pki.ca.cert
    local p1, p2 = proc.free_port(), proc.free_port()
    open_proxy = proc.start(proc.lua .. " spec/peers/connect_proxy.lua " .. p1, { port = p1 })
    open_proxy.url = "http://127.0.0.1:" .. p1
    auth_proxy = proc.start(proc.lua .. " spec/peers/connect_proxy.lua " .. p2 .. " alice:s3cret",
      { port = p2 })
    auth_proxy.port = p2
  end)

  teardown(function()
    https.pool_clear()
    if open_proxy then open_proxy.stop() end
    if auth_proxy then auth_proxy.stop() end
    if web then web.stop() end
    pki.cleanup()
  end)

  it("tunnels through opts.proxy and keeps the tunnel alive between requests", function()
    https.pool_clear()
    local before = tunnels(open_proxy)
    for _ = 1, 3 do
      local res = assert(https.get(base .. "/hello.txt", { ca_file = ca, proxy = open_proxy.url }))
      assert.equal("hello from nginx\n", res.body)
    end
    assert.equal(1, tunnels(open_proxy) - before)
    assert.matches("TUNNEL 127%.0%.0%.1:" .. web.port, open_proxy.output())
  end)

  it("verifies the server end to end through the tunnel", function()
    local res, err = https.get(base .. "/hello.txt", { proxy = open_proxy.url, timeout = 5 })
    assert.is_nil(res)
    assert.is_true(tls.is_verify_error(err), err)
  end)

  it("downloads a large file through the tunnel intact", function()
    local out = os.tmpname()
    local f = assert(io.open(out, "wb"))
    assert(https.get(base .. "/big.bin", { ca_file = ca, proxy = open_proxy.url,
      sink = function(c) if c then f:write(c) end return 1 end }))
    f:close()
    assert.equal(ngx.sha256sum(web.www .. "/big.bin"), ngx.sha256sum(out))
    os.remove(out)
  end)

  describe("basic auth", function()
    it("reports a proxy that wants credentials", function()
      local res, err = https.get(base .. "/hello.txt",
        { ca_file = ca, proxy = "http://127.0.0.1:" .. auth_proxy.port })
      assert.is_nil(res)
      assert.matches("^proxy: authentication required %(407", err)
      assert.matches("http://user:pass@host:port", err, 1, true)
    end)

    it("reports credentials the proxy refuses", function()
      local res, err = https.get(base .. "/hello.txt",
        { ca_file = ca, proxy = "http://alice:wrong@127.0.0.1:" .. auth_proxy.port })
      assert.is_nil(res)
      assert.matches("^proxy: authentication required %(407.*refused the credentials", err)
    end)

    it("sends the credentials from the proxy URL", function()
      local res = assert(https.get(base .. "/hello.txt",
        { ca_file = ca, proxy = "http://alice:s3cret@127.0.0.1:" .. auth_proxy.port }))
      assert.equal(200, res.status)
      assert.matches("TUNNEL 127%.0%.0%.1:" .. web.port, auth_proxy.output())
    end)
  end)

  it("reports a proxy that cannot be reached", function()
    local res, err = https.get(base .. "/hello.txt",
      { ca_file = ca, proxy = "http://127.0.0.1:" .. proc.free_port() })
    assert.is_nil(res)
    assert.matches("^proxy: cannot connect to 127%.0%.0%.1 port %d+", err)
  end)

  it("reports a CONNECT the proxy refuses with another code than 407", function()
    -- the proxy answers 502 when it cannot reach the target
    local port = proc.free_port()
    local res, err = https.get("https://127.0.0.1:" .. port .. "/",
      { ca_file = ca, proxy = open_proxy.url, timeout = 5 })
    assert.is_nil(res)
    assert.equal("proxy: CONNECT 127.0.0.1:" .. port .. " refused: 502 Bad Gateway", err)
  end)

  it("bypasses opts.proxy for hosts in opts.no_proxy", function()
    https.pool_clear()
    local before = tunnels(open_proxy)
    for _, np in ipairs { "example.org,127.0.0.1", "127.0.0.1:" .. web.port, "*" } do
      local res = assert(https.get(base .. "/hello.txt",
        { ca_file = ca, proxy = open_proxy.url, no_proxy = np }))
      assert.equal(200, res.status)
      https.pool_clear()
    end
    assert.equal(0, tunnels(open_proxy) - before)
    -- a list that does not name the host (or names another port) leaves the proxy in use
    for _, np in ipairs { "example.org", "127.0.0.1:1" } do
      assert(https.get(base .. "/hello.txt", { ca_file = ca, proxy = open_proxy.url, no_proxy = np }))
      https.pool_clear()
    end
    assert.equal(2, tunnels(open_proxy) - before)
  end)

  it("refuses an https:// proxy URL with a clear message", function()
    local res, err = https.get(base .. "/hello.txt", { ca_file = ca, proxy = "https://127.0.0.1:1" })
    assert.is_nil(res)
    assert.matches("^proxy: https:// proxy URLs are not supported", err)
  end)

  describe("from the environment", function()
    -- a child process, so the variables are really in its environment
    local function child(env, extra)
      local script = ([[
local https = require "tls.https"
local res, err = https.get(%q, { ca_file = %q %s })
print(res and ("STATUS " .. res.status) or ("ERROR " .. err))
]]):format(base .. "/hello.txt", ca, extra or "")
      local out = proc.run(env .. " " .. proc.lua .. " -e " .. peers.quote(script))
      return out
    end

    it("uses https_proxy", function()
      local before = tunnels(open_proxy)
      local out = child("https_proxy=" .. open_proxy.url)
      assert.matches("STATUS 200", out)
      assert.equal(1, tunnels(open_proxy) - before)
    end)

    it("uses HTTPS_PROXY, without a scheme too", function()
      local before = tunnels(open_proxy)
      local out = child("HTTPS_PROXY=" .. open_proxy.url:gsub("^http://", ""))
      assert.matches("STATUS 200", out)
      assert.equal(1, tunnels(open_proxy) - before)
    end)

    it("bypasses the proxy for hosts in no_proxy", function()
      local before = tunnels(open_proxy)
      local out = child("https_proxy=" .. open_proxy.url .. " no_proxy=example.org,127.0.0.1")
      assert.matches("STATUS 200", out)
      out = child("https_proxy=" .. open_proxy.url .. " NO_PROXY=*")
      assert.matches("STATUS 200", out)
      assert.equal(0, tunnels(open_proxy) - before)
    end)

    it("ignores the environment with proxy = false", function()
      local out = child("https_proxy=http://127.0.0.1:" .. proc.free_port(), ", proxy = false")
      assert.matches("STATUS 200", out)
    end)

    it("takes the credentials from the variable", function()
      local out = child("https_proxy=http://alice:s3cret@127.0.0.1:" .. auth_proxy.port)
      assert.matches("STATUS 200", out)
    end)
  end)
end)
