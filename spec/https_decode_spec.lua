-- tls.https content decoding (gzip, deflate through lua-zlib) against nginx
-- (gzip on the fly, HTTP/1.1 and HTTP/2) and the raw frame server (deflate
-- with and without its zlib header, a truncated gzip body, a gzip bomb).

local pki = require "support.pki"
local ngx = require "support.https_nginx"
local h2_peers = require "support.h2_peers"
local https = require "tls.https"

local read = pki.read

local opts = ngx.options { timeout = 20 }

describe("tls.https content decoding against nginx", function()
  local srv, want

  ngx.fixture(function(s)
    srv = s
    want = read(srv.www .. "/gz/big.txt")
  end)

  for _, v in ipairs { "1.1", "2" } do
    local function url(path)
      return "https://127.0.0.1:" .. (v == "2" and srv.h2_port or srv.port) .. path
    end

    it("asks for gzip and decodes it (HTTP/" .. v .. ")", function()
      local res = assert(https.get(url("/gz/big.txt"), opts()))
      assert.equal(v, res.version)
      assert.equal("gzip", res.headers["content-encoding"])
      assert.equal("gzip", res.decoded)
      assert.equal(#want, #res.body)
      assert.equal(want, res.body)
    end)

    it("decode = false asks for nothing and gets the body as it is (HTTP/" .. v .. ")", function()
      local res = assert(https.get(url("/gz/big.txt"), opts { decode = false }))
      assert.is_nil(res.headers["content-encoding"])
      assert.is_nil(res.decoded)
      assert.equal(want, res.body)
    end)

    it("leaves the body coded when the caller sent its own Accept-Encoding, unless decode = true (HTTP/" .. v .. ")", function()
      local res = assert(https.get(url("/gz/big.txt"), opts { headers = { ["Accept-Encoding"] = "gzip" } }))
      assert.equal("\31\139", res.body:sub(1, 2))
      assert.is_true(#res.body < #want)
      res = assert(https.get(url("/gz/big.txt"), opts { decode = true, headers = { ["Accept-Encoding"] = "gzip" } }))
      assert.equal(want, res.body)
    end)

    it("bounds the decoded body by max_body (HTTP/" .. v .. ")", function()
      local res, err = https.get(url("/gz/big.txt"), opts { max_body = 100000 })
      assert.is_nil(res)
      assert.matches("response body is over 100000 bytes", err)
    end)

    it("decodes into a sink, with progress counting decoded bytes (HTTP/" .. v .. ")", function()
      local parts, last, total = {}, 0, false
      local res = assert(https.fetch(opts { url = url("/gz/big.txt"),
        sink = function(c) if c then parts[#parts + 1] = c end return 1 end,
        progress = function(n, t) last, total = n, t end }))
      assert.equal("gzip", res.decoded)
      assert.equal(want, table.concat(parts))
      assert.equal(#want, last)
      assert.is_nil(total)
    end)
  end

  it("without lua-zlib asks for no coding and gets the body as it is", function()
    local proc = require "support.proc"
    local script = os.tmpname()
    pki.write(script, ([[
package.preload.zlib = function() error("lua-zlib is not installed") end
local https = require "tls.https"
local res = assert(https.get("https://127.0.0.1:%d/gz/big.txt", { ca_file = %q }))
io.write(tostring(res.headers["content-encoding"]), " ", tostring(res.decoded), " ", #res.body)
]]):format(srv.port, pki.ca.cert))
    local out = proc.run(proc.lua .. " " .. script)  -- the suite's Lua: the exported LUA_CPATH is its build
    os.remove(script)
    assert.equal("nil nil " .. #want, out)
  end)

  it("a HEAD of a gzip resource has no body to decode", function()
    local res = assert(https.fetch(opts { url = "https://127.0.0.1:" .. srv.port .. "/gz/big.txt", method = "HEAD" }))
    assert.equal(200, res.status)
    assert.equal("", res.body)
  end)
end)

describe("tls.https content decoding against a scripted server", function()
  setup(function() pki.setup() end)
  teardown(function() https.pool_clear() end)

  local function get(scenario, extra)
    local srv = h2_peers.frames(pki.server, scenario)
    local res, err = https.get("https://127.0.0.1:" .. srv.port .. "/", opts(extra))
    srv.stop()
    https.pool_clear()
    return res, err
  end

  it("decodes deflate with its zlib header, and the raw stream many servers send", function()
    assert.equal(("hello deflate "):rep(1000), assert(get("deflate-zlib")).body)
    assert.equal(("hello deflate "):rep(1000), assert(get("deflate-raw")).body)
  end)

  it("decodes every member of a gzip body, not only the first", function()
    -- members that end inside one piece of input: the rest of the piece
    -- starts the next member (it was dropped, and the body looked complete)
    assert.equal("first member\nsecond member\n", assert(get("gzip-members")).body)
  end)

  it("refuses a gzip body that ends before its stream does", function()
    local res, err = get("gzip-truncated")
    assert.is_nil(res)
    assert.matches("content decoding: the gzip body ended before its compressed stream did", err)
  end)

  it("stops a gzip bomb (200 MiB of zeros in 200 KB) at max_body, without holding it", function()
    local before = collectgarbage("count")
    local res, err = get("gzip-bomb")
    assert.is_nil(res)
    assert.matches("response body is over 67108864 bytes", err)
    res, err = get("gzip-bomb", { max_body = 1000000 })
    assert.is_nil(res)
    assert.matches("response body is over 1000000 bytes", err)
    collectgarbage()
    assert.is_true(collectgarbage("count") - before < 16 * 1024)
  end)
end)

describe("tls.https content decoding over HTTP/1.1 from the module's own server", function()
  local peers = require "support.peers"
  local zlib = require "zlib"
  local function gz(s) return zlib.deflate(9, 31)(s, "finish") end

  setup(function() pki.setup() end)
  teardown(function() https.pool_clear() end)

  -- One GET answered with head .. body as bytes; with stream = true the
  -- body is read with res:read("a"). -> res | nil, err
  local function get(head, body, extra)
    local file = os.tmpname()
    pki.write(file, head .. body)
    local srv = peers.scripted(pki.server, ([[return function(conn)
      repeat local l = conn:receive("*l") until not l or l == ""
      local f = assert(io.open(%q, "rb")); conn:send(f:read("*a")); f:close()
      conn:close()
    end]]):format(file))
    local res, err = https.get("https://localhost:" .. srv.port .. "/",
      ngx.options { timeout = 20, servername = "localhost" }(extra))
    if res and extra and extra.stream then
      res.body, err = res:read("a")
      if not res.body then res = nil end
    end
    srv.stop()
    os.remove(file)
    https.pool_clear()
    return res, err
  end
  local function length(n, coding)
    return ("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Encoding: %s\r\n\r\n"):format(n, coding)
  end
  local function to_close(coding)
    return ("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Encoding: %s\r\n\r\n"):format(coding)
  end

  it("stops a gzip bomb at max_body, buffered and through stream = true", function()
    local bomb = gz(("\0"):rep(200 * 1024 * 1024))
    local before = collectgarbage("count")
    for _, extra in ipairs { {}, { max_body = 1000000 }, { stream = true } } do
      for _, head in ipairs { length(#bomb, "gzip"), to_close("gzip") } do
        local res, err = get(head, bomb, extra)
        assert.is_nil(res)
        assert.matches("^response body is over " .. (extra.max_body or 67108864) .. " bytes", err)
      end
    end
    collectgarbage()
    assert.is_true(collectgarbage("count") - before < 16 * 1024)
  end)

  it("refuses a gzip stream cut short, whatever the framing says", function()
    local g = gz(("hello gzip "):rep(100))
    for _, cut in ipairs { 4, 10, #g - 12 } do
      local short = g:sub(1, -cut - 1)
      for _, case in ipairs { { length(#short, "gzip") }, { to_close("gzip") },
          { to_close("gzip"), { stream = true } } } do
        local res, err = get(case[1], short, case[2])
        assert.is_nil(res)
        assert.equal("content decoding: the gzip body ended before its compressed stream did", err)
      end
    end
  end)

  it("leaves stacked or unknown codings as sent, and says so (res.decoded is nil)", function()
    local g = gz("hello\n")
    local gg = gz(g)
    local res = assert(get(length(#gg, "gzip, gzip"), gg))
    assert.is_nil(res.decoded)
    assert.equal(gg, res.body)
    res = assert(get(length(#g, "br"), g))
    assert.is_nil(res.decoded)
    assert.equal(g, res.body)
  end)

  it("reads past bytes that follow the gzip stream only when they start a next member", function()
    local g = gz("hello\n")
    -- junk that is not a member is dropped (as gzip -d and urllib3 do)
    assert.equal("hello\n", assert(get(length(#g + 5, "gzip"), g .. "junk!")).body)
    local res, err = get(length(#g + 5, "gzip"), g .. "\31junk")
    assert.is_nil(res)
    assert.matches("^content decoding: bad gzip data", err)
  end)
end)
