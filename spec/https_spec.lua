-- tls.https against real servers on loopback: nginx from Debian (static
-- files, keep-alive, chunked responses through SSI, redirects, WebDAV PUT,
-- client certificates) and the module's own HTTPS server.

local pki = require "support.pki"
local proc = require "support.proc"
local ngx = require "support.https_nginx"
local peers = require "support.peers"
local https = require "tls.https"
local tls = require "tls"
local sha256 = require "tls.sha256"

local read = pki.read

-- Request options trusting the test CA, plus `extra`.
local opts = ngx.options()

local function fields(body)
  local t = {}
  for k, v in body:gmatch("([%w%-]+)=([^\n]*)") do t[k] = v end
  return t
end

describe("tls.https against nginx", function()
  local srv, base

  ngx.fixture(function(s)
    srv = s
    base = "https://127.0.0.1:" .. srv.port
  end)

  describe("the LuaSocket/LuaSec forms", function()
    it("request(url) uses the system trust store, where the test CA is not", function()
      local body, err = https.request(base .. "/hello.txt")
      assert.is_nil(body)
      assert.is_true(tls.is_verify_error(err), err)
    end)

    it("request(url [, body]) returns body, code, headers and status line", function()
      https.defaults.ca_file = pki.ca.cert
      local ok, body, code, headers, status = pcall(https.request, base .. "/hello.txt")
      local ok2, pbody, pcode = pcall(https.request, base .. "/method", "a=1&b=2")
      https.defaults.ca_file = nil
      assert.is_true(ok, body)
      assert.equal("hello from nginx\n", body)
      assert.equal(200, code)
      assert.equal("17", headers["content-length"])
      assert.equal("HTTP/1.1 200 OK", status)
      assert.is_true(ok2, pbody)
      assert.equal(200, pcode)
      assert.equal("POST 7\n", pbody)
    end)

    it("request{...} fills an ltn12 sink and returns 1, code, headers, status", function()
      local ltn12 = require "ltn12"
      local t = {}
      local one, code, headers, status = https.request {
        url = base .. "/hello.txt", sink = ltn12.sink.table(t), ca_file = pki.ca.cert }
      assert.equal(1, one)
      assert.equal(200, code)
      assert.equal("HTTP/1.1 200 OK", status)
      assert.equal("17", headers["content-length"])
      assert.equal("hello from nginx\n", table.concat(t))
    end)

    it("request{...} uploads an ltn12 source of unknown length chunked (WebDAV PUT)", function()
      local ltn12 = require "ltn12"
      local data = {}
      for i = 1, 300 do data[i] = ("%05d"):format(i):rep(200) end
      local one, code = https.request {
        url = base .. "/upload/put1.bin", method = "PUT", ca_file = pki.ca.cert,
        source = ltn12.source.table(data) }
      assert.equal(1, one)
      assert.is_true(code == 201 or code == 204, tostring(code))
      assert.equal(sha256.hex(table.concat(data)), ngx.sha256sum(srv.www .. "/upload/put1.bin"))
    end)

    it("request{...} sends a source with a given Content-Length as is", function()
      local ltn12 = require "ltn12"
      local data = ("abcdefgh"):rep(5000)
      local one, code = https.request {
        url = base .. "/upload/put2.bin", method = "PUT", ca_file = pki.ca.cert,
        headers = { ["content-length"] = #data }, source = ltn12.source.string(data) }
      assert.equal(1, one)
      assert.is_true(code == 201 or code == 204, tostring(code))
      assert.equal(read(srv.www .. "/upload/put2.bin"), data)
    end)
  end)

  describe("get/post/fetch", function()
    it("returns status, headers with case-insensitive lookup, and the body", function()
      local res = assert(https.get(base .. "/hello.txt", opts()))
      assert.equal(200, res.status)
      assert.equal("OK", res.reason)
      assert.equal("hello from nginx\n", res.body)
      assert.equal("17", res.headers["Content-Length"])
      assert.equal("17", res.headers["content-length"])
      assert.equal("17", res.headers:get("CONTENT-LENGTH"))
      assert.equal("http/1.1", res.tls.alpn)
    end)

    it("downloads 20 MiB intact (SHA-256 of the file on disk)", function()
      local out = os.tmpname()
      local f = assert(io.open(out, "wb"))
      local seen, total_seen = 0, nil
      local res = assert(https.get(base .. "/big.bin", opts {
        sink = function(chunk) if chunk then f:write(chunk) end return 1 end,
        progress = function(n, total) seen, total_seen = n, total end }))
      f:close()
      assert.equal(200, res.status)
      assert.is_nil(res.body)
      assert.equal(20971520, seen)
      assert.equal(20971520, total_seen)
      assert.equal(ngx.sha256sum(srv.www .. "/big.bin"), ngx.sha256sum(out))
      os.remove(out)
    end)

    it("decodes a chunked response (nginx SSI) intact", function()
      local res = assert(https.get(base .. "/chunked/big.txt", opts()))
      assert.equal("chunked", res.headers["transfer-encoding"])
      assert.is_nil(res.headers["content-length"])
      local out = os.tmpname()
      local f = assert(io.open(out, "wb"))
      f:write(res.body)
      f:close()
      assert.equal(ngx.sha256sum(srv.www .. "/chunked/big.txt"), ngx.sha256sum(out))
      os.remove(out)
    end)

    it("reads no body for HEAD, 204 and 304, and keeps the connection", function()
      https.pool_clear()
      local before = https.pool_stats()
      local res = assert(https.fetch(opts { url = base .. "/big.bin", method = "HEAD" }))
      assert.equal(200, res.status)
      assert.equal("20971520", res.headers["content-length"])
      assert.equal("", res.body)
      res = assert(https.get(base .. "/nocontent", opts()))
      assert.equal(204, res.status)
      assert.equal("", res.body)
      local lm = assert(https.get(base .. "/hello.txt", opts())).headers["last-modified"]
      res = assert(https.get(base .. "/hello.txt", opts { headers = { ["If-Modified-Since"] = lm } }))
      assert.equal(304, res.status)
      assert.equal("", res.body)
      local after = https.pool_stats()
      assert.equal(1, after.connections_opened - before.connections_opened)
    end)

    it("posts a string body and a form table", function()
      local res = assert(https.post(base .. "/method", "x=1", opts()))
      assert.equal("POST 3\n", res.body)
      res = assert(https.post(base .. "/method", { a = "b c", d = "&" }, opts()))
      assert.equal("POST 13\n", res.body)   -- a=b%20c&d=%26
    end)
  end)

  describe("examples/https_get.lua", function()
    it("downloads like a tiny curl, with progress on stderr", function()
      local out = os.tmpname()
      -- the body goes to the file; the output is stderr: progress lines
      local progress, status = proc.run((proc.lua .. " examples/https_get.lua --cacert %s -o %s %s/big.bin")
        :format(pki.ca.cert, out, base))
      assert.equal(0, status, progress)
      assert.equal(ngx.sha256sum(srv.www .. "/big.bin"), ngx.sha256sum(out))
      assert.matches("100%.0%%  20%.0 MiB of 20%.0 MiB", progress)
      local text, st2 = proc.run((proc.lua .. " examples/https_get.lua %s/hello.txt"):format(base))
      assert.equal(1, st2)
      assert.matches("https_get: verify:", text)
      os.remove(out)
    end)
  end)

  describe("keep-alive", function()
    it("sends 200 sequential GETs over one TLS connection", function()
      https.pool_clear()
      local before = https.pool_stats()
      local logged = #read(srv.dir .. "/access.log")
      for i = 1, 200 do
        local res = assert(https.get(base .. "/hello.txt", opts()))
        assert.equal("hello from nginx\n", res.body, "request " .. i)
      end
      local after = https.pool_stats()
      assert.equal(1, after.connections_opened - before.connections_opened)
      assert.equal(199, after.reused - before.reused)
      assert.equal(200, after.requests - before.requests)
      -- nginx agrees: these 200 requests came on one connection
      local ids, n = ngx.serials_after(srv, logged, 200)
      assert.equal(200, n)
      assert.equal(1, #ids, "nginx connections: " .. table.concat(ids, " "))
    end)

    it("opens a new connection per request with keepalive = false", function()
      https.pool_clear()
      local before = https.pool_stats()
      for _ = 1, 3 do assert(https.get(base .. "/hello.txt", opts { keepalive = false })) end
      local after = https.pool_stats()
      assert.equal(3, after.connections_opened - before.connections_opened)
      assert.equal(0, after.reused - before.reused)
      assert.equal(0, after.idle)
    end)

    it("bounds the pool and expires idle connections", function()
      https.pool_clear()
      https.pool_options { idle_timeout = 0.2 }
      assert(https.get(base .. "/hello.txt", opts()))
      assert.equal(1, https.pool_stats().idle)
      proc.sleep(0.4)
      local before = https.pool_stats()
      assert(https.get(base .. "/hello.txt", opts()))
      local after = https.pool_stats()
      assert.equal(1, after.expired - before.expired)
      assert.equal(1, after.connections_opened - before.connections_opened)
      https.pool_options { idle_timeout = 30, max_idle = 0 }
      assert(https.get(base .. "/hello.txt", opts()))
      assert.equal(0, https.pool_stats().idle)
      https.pool_options { max_idle = 64 }
    end)

    it("keeps one config per distinct set of TLS options", function()
      https.pool_clear()
      local before = https.pool_stats()
      assert(https.get(base .. "/hello.txt", opts()))
      assert(https.get(base .. "/hello.txt", opts { ciphers = "secure" }))
      assert(https.get(base .. "/hello.txt", opts()))
      assert(https.get(base .. "/hello.txt", opts { ciphers = "secure" }))
      local after = https.pool_stats()
      -- different TLS settings never share a connection
      assert.equal(2, after.connections_opened - before.connections_opened)
    end)
  end)

  describe("redirects", function()
    it("turns POST into GET for 301, 302 and 303 and drops the body", function()
      for _, code in ipairs { 301, 302, 303 } do
        local res = assert(https.post(base .. "/r" .. code, "abc", opts()))
        assert.equal(200, res.status)
        assert.equal("GET \n", res.body, "after " .. code)
        assert.equal(base .. "/method", res.url)
      end
    end)

    it("keeps the method and body for 307 and 308", function()
      for _, code in ipairs { 307, 308 } do
        local res = assert(https.post(base .. "/r" .. code, "abc", opts()))
        assert.equal("POST 3\n", res.body, "after " .. code)
      end
      local res = assert(https.fetch(opts { url = base .. "/r303", method = "HEAD" }))
      assert.equal(200, res.status)   -- HEAD stays HEAD after 303
    end)

    it("stops at the limit", function()
      local res, err = https.get(base .. "/loop", opts { max_redirects = 3 })
      assert.is_nil(res)
      assert.matches("too many redirects %(more than 3", err)
    end)

    it("hands back the 3xx when redirect = false", function()
      local res = assert(https.get(base .. "/r301", opts { redirect = false }))
      assert.equal(301, res.status)
      assert.matches("/method$", res.headers.location)
    end)

    it("never goes from https to http unless insecure_http is set", function()
      local res, err = https.get(base .. "/to-http", opts())
      assert.is_nil(res)
      assert.matches("^redirect: refusing to follow a redirect from https to http://", err)
      res = assert(https.get(base .. "/to-http", opts { insecure_http = true }))
      assert.equal("hello from nginx\n", res.body)
      assert.matches("^http://", res.url)
    end)

    it("keeps Authorization within the origin and drops it when leaving", function()
      local h = { headers = { Authorization = "Bearer t0ken" } }
      local res = assert(https.get(base .. "/to-auth", opts(h)))
      assert.equal("auth=Bearer t0ken\n", res.body)
      h.insecure_http = true
      res = assert(https.get(base .. "/to-http-auth", opts(h)))
      assert.matches("^http://", res.url)
      assert.equal("auth=\n", res.body)
    end)

    it("refuses plain http URLs", function()
      local res, err = https.get("http://127.0.0.1:" .. srv.http_port .. "/hello.txt", opts())
      assert.is_nil(res)
      assert.matches("plain http is refused", err)
    end)
  end)

  describe("TLS options pass through", function()
    it("fails verification without the test CA, with a verify: error", function()
      local res, err = https.get(base .. "/hello.txt", { timeout = 5 })
      assert.is_nil(res)
      assert.is_true(tls.is_verify_error(err), err)
    end)

    it("runs a policy and reports its refusal with policy:", function()
      local seen
      local res, err = https.get(base .. "/hello.txt", opts {
        policy = function(conn) seen = conn:peer().subject; return nil, "pin mismatch" end })
      assert.is_nil(res)
      assert.equal("policy: pin mismatch", err)
      assert.matches("localhost", seen)
      res = assert(https.get(base .. "/hello.txt", opts { policy = function() return true end }))
      assert.equal(200, res.status)
    end)

    it("presents a client certificate", function()
      local url = "https://127.0.0.1:" .. srv.mtls_port .. "/"
      local res = assert(https.get(url, opts()))
      assert.equal(400, res.status)   -- nginx: no required SSL certificate was sent
      res = assert(https.get(url, opts { cert_file = pki.client.cert, key_file = pki.client.key }))
      assert.equal(200, res.status)
      assert.matches("CN=client.test", res.body)
    end)

    it("takes a ready config", function()
      local cfg = assert(tls.config { ca_file = pki.ca.cert, alpn = { "http/1.1" } })
      local res = assert(https.get(base .. "/hello.txt", { config = cfg }))
      assert.equal(200, res.status)
    end)

    it("raises on misuse, naming the option", function()
      assert.error_matches(function() https.get(base, opts { no_such_option = 1 }) end,
        "tls.https: unknown option 'no_such_option'", 1, true)
      local ok, err = pcall(https.get, base, opts { timeout = "soon" })
      assert.is_false(ok)
      assert.matches("option 'timeout' must be a positive number", err)
      ok, err = pcall(https.get, base, opts { headers = { ["X-A"] = "a\r\nInjected: 1" } })
      assert.is_false(ok)
      assert.matches("header 'X%-A' contains CR, LF or NUL", err)
      -- 20 digits: not a byte count any Lua holds exactly (5.1 would send "1e+20")
      ok, err = pcall(https.request, opts { url = base .. "/", method = "PUT",
        headers = { ["Content-Length"] = ("9"):rep(20) }, source = function() return nil end })
      assert.is_false(ok)
      assert.matches("header 'content%-length' must be a byte count", err)
      ok, err = pcall(https.get, base, opts { policy = "strict" })
      assert.is_false(ok)
      assert.matches("^tls%.https: option 'policy' must be a function, "
        .. "a tls%.policy or false, got string", err)
    end)

    it("returns nil and a message for an unreadable CA file", function()
      local res, err = https.get(base, { ca_file = "/nonexistent/ca.pem" })
      assert.is_nil(res)
      assert.matches("ca_file", err)
    end)
  end)
end)

describe("tls.https and ALPN", function()
  it("refuses a server that picks a protocol other than h2 or http/1.1", function()
    pki.setup()
    local srv = peers.scripted(pki.server, "return function() end", '{ alpn = { "spdy/3" } }')
    finally(function() https.pool_clear(); srv.stop(); pki.cleanup() end)
    local res, err = https.get("https://127.0.0.1:" .. srv.port .. "/", {
      ca_file = pki.ca.cert, alpn = { "spdy/3", "http/1.1" }, timeout = 5 })
    assert.is_nil(res)
    assert.matches("^alpn: the server chose 'spdy/3'; tls.https speaks h2 and http/1.1 only", err)
  end)
end)

describe("tls.https against the module's own server", function()
  local srv, base

  peers.fixture(function(p) return peers.lua_server("https_server.lua", p.server) end, function(s)
    srv, base = s, "https://localhost:" .. s.port
  end)

  it("sends Host, User-Agent and the caller's headers, repeated ones included", function()
    local res = assert(https.get(base .. "/x?q=1", opts { headers = { ["X-Multi"] = { "a", "b" } } }))
    local f = fields(res.body)
    assert.equal("GET", f.method)
    assert.equal("/x?q=1", f.path)
    assert.equal("localhost:" .. base:match("%d+$"), f["h-host"])
    assert.matches("^lua%-tls", f["h-user-agent"])
    -- a list value goes out as one header line per value, in order
    local multi = {}
    for v in res.body:gmatch("\nh%-x%-multi=([^\n]*)") do multi[#multi + 1] = v end
    assert.same({ "a", "b" }, multi)
  end)

  it("keeps the order of a header's values among other headers", function()
    local values = { "1", "2", "3", "4", "5", "6", "7", "8", "9" }
    local res = assert(https.get(base .. "/x", opts { headers = {
      ["X-Multi"] = values, ["X-A"] = "a", ["X-Z"] = "z", Accept = "*/*" } }))
    local multi = {}
    for v in res.body:gmatch("\nh%-x%-multi=([^\n]*)") do multi[#multi + 1] = v end
    assert.same(values, multi)
  end)

  it("examples/https_get.lua sends each repeated -H as its own header line", function()
    local text, status = proc.run((proc.lua .. " examples/https_get.lua -q --cacert %s -H 'X-Multi: a' "
      .. "-H 'X-Multi: b' -H 'X-One: c' %s/x"):format(peers.quote(pki.ca.cert), base))
    assert.equal(0, status, text)
    local multi = {}
    for v in text:gmatch("\nh%-x%-multi=([^\n]*)") do multi[#multi + 1] = v end
    assert.same({ "a", "b" }, multi)
    assert.matches("\nh%-x%-one=c\n", text)
  end)

  it("sends credentials from the URL as basic auth", function()
    local res = assert(https.get(base:gsub("//", "//alice:p%%40ss@") .. "/auth", opts()))
    assert.equal("Basic " .. require("tls.base64").encode("alice:p@ss"), fields(res.body)["h-authorization"])
  end)

  it("works without LuaSocket, and says proxies need it", function()
    local script = ([[
package.preload.socket = function() error("LuaSocket hidden") end
package.preload.ltn12 = function() error("LuaSocket hidden") end
local https = require "tls.https"
local res, err = https.get(%q, { ca_file = %q, proxy = false })
print(res and ("STATUS " .. res.status) or ("ERROR " .. err))
res, err = https.get(%q, { ca_file = %q, proxy = "http://127.0.0.1:1" })
print(res and ("STATUS " .. res.status) or ("ERROR " .. err))
]]):format(base .. "/x", pki.ca.cert, base .. "/x", pki.ca.cert)
    local out = proc.run(proc.lua .. " -e " .. peers.quote(script))
    assert.matches("STATUS 200\nERROR proxy: CONNECT proxies need LuaSocket %(Debian package lua%-socket%)", out)
  end)

  it("takes request{} with plain-function source and sink without LuaSocket", function()
    local script = ([[
package.preload.socket = function() error("LuaSocket hidden") end
package.preload.ltn12 = function() error("LuaSocket hidden") end
local https = require "tls.https"
local parts, i = { "hello ", "from ", "a source" }, 0
local got = {}
local one, code, headers, status = https.request {
  url = %q, method = "PUT", ca_file = %q, proxy = false,
  source = function() i = i + 1; return parts[i] end,
  sink = function(chunk) if chunk then got[#got + 1] = chunk end return 1 end }
print("RESULT", one, code, status, headers and headers["content-type"])
print(table.concat(got))
]]):format(base .. "/up", pki.ca.cert)
    local out = proc.run(proc.lua .. " -e " .. peers.quote(script))
    assert.matches("RESULT\t1\t200\tHTTP/1%.1 200 OK\ttext/plain\n", out)
    local f = fields(out)
    assert.equal("PUT", f.method)
    assert.equal("chunked", f.te)
    assert.equal(sha256.hex("hello from a source"), f.sha256)
  end)

  it("uploads a source of unknown length chunked and the server gets it whole", function()
    local parts = {}
    for i = 1, 50 do parts[i] = ("%04d"):format(i):rep(500) end
    local i = 0
    local res = assert(https.fetch(opts { url = base .. "/up", method = "PUT",
      body = function() i = i + 1; return parts[i] end }))
    local f = fields(res.body)
    assert.equal("chunked", f.te)
    assert.equal(tostring(#table.concat(parts)), f.length)
    assert.equal(sha256.hex(table.concat(parts)), f.sha256)
  end)

  it("decodes chunked bodies with odd chunk sizes and trailers", function()
    local res = assert(https.get(base .. "/chunked?n=123457", opts()))
    local expect = ("0123456789"):rep(12346):sub(1, 123457)
    assert.equal(#expect, #res.body)
    assert.equal(sha256.hex(expect), sha256.hex(res.body))
  end)

  it("reuses the connection, and opens a new one after the server closed it", function()
    https.pool_clear()
    local a = fields(assert(https.get(base .. "/a", opts())).body)
    local b = fields(assert(https.get(base .. "/b", opts())).body)
    assert.equal(a.conn, b.conn)
    assert.equal("2", b.req)
    proc.sleep(0.8)   -- the server closes idle connections after 0.5 s
    local before = https.pool_stats()
    local c = fields(assert(https.get(base .. "/c", opts())).body)
    assert.not_equal(a.conn, c.conn)
    local after = https.pool_stats()
    assert.equal(1, after.connections_opened - before.connections_opened)
  end)

  it("does not reuse a connection the server said it would close", function()
    https.pool_clear()
    assert(https.get(base .. "/close", opts()))
    assert.equal(0, https.pool_stats().idle)
  end)

  describe("pins through a tls.policy", function()
    local function leaf_pin()
      return require("tls.x509").parse(read(pki.server.cert)).spki_sha256
    end

    it("accepts the server whose key matches a pin", function()
      https.pool_clear()
      local res = assert(https.get(base .. "/pinned", opts {
        policy = tls.policy { pins = { leaf_pin() } } }))
      assert.equal(200, res.status)
    end)

    it("refuses a server whose key matches no pin, with policy: pins:", function()
      https.pool_clear()
      local other = require("tls.base64").encode(("\0"):rep(32))
      assert.not_equal(other, leaf_pin())
      local res, err = https.get(base .. "/pinned", opts {
        policy = tls.policy { pins = { other } } })
      assert.is_nil(res)
      assert.matches("^policy: pins:", err)
      assert.matches(leaf_pin(), err, 1, true)
    end)
  end)

  it("uses the servername option for SNI and verification", function()
    https.pool_clear()
    -- the certificate names 127.0.0.1 too: only the server's view and a
    -- name it does not hold show that the option is used
    local ip = base:gsub("localhost", "127.0.0.1")
    local res = assert(https.get(ip .. "/sni", opts { servername = "localhost" }))
    assert.equal(200, res.status)
    assert.equal("localhost", fields(res.body).sni)
    local none, err = https.get(ip .. "/sni", opts { servername = "alt.test" })
    assert.is_nil(none)
    assert.is_true(tls.is_verify_error(err), err)
  end)
end)
