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
