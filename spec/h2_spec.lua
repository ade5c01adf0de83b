-- tls.https over HTTP/2 against real servers on loopback: nginx with http2
-- on its TLS port, nghttpd (nghttp2-server), and a raw frame server playing
-- what a hostile or unusual server sends (spec/peers/h2_frames_server.py).

local pki = require "support.pki"
local cq_run = require("support.cq").run
local ngx = require "support.https_nginx"
local h2_peers = require "support.h2_peers"
local https = require "tls.https"
local h2 = require "tls.h2.conn"

local read = pki.read

local opts = ngx.options { timeout = 20 }

-- a sink into a file; -> sink, close
local function file_sink(path)
  local f = assert(io.open(path, "wb"))
  return function(chunk)
    if chunk then f:write(chunk) else f:close() end
    return 1
  end
end

local logged, serials_after = ngx.logged, ngx.serials_after

local function opened()
  return https.pool_stats().connections_opened
end

local function with_window(w, fn)
  local old = h2.WINDOW
  h2.WINDOW = w
  local ok, err = pcall(fn)
  h2.WINDOW = old
  if not ok then error(err, 0) end
end

describe("tls.https over HTTP/2 against nginx", function()
  local srv, base

  ngx.fixture(function(s)
    srv = s
    base = "https://127.0.0.1:" .. srv.h2_port
  end)

  before_each(function() https.pool_clear() end)

  it("negotiates h2 through ALPN by default, and res.version says so", function()
    local res = assert(https.get(base .. "/hello.txt", opts()))
    assert.equal(200, res.status)
    assert.equal("2", res.version)
    assert.equal("HTTP/2 200", res.status_line)
    assert.equal("h2", res.tls.alpn)
    assert.equal("hello from nginx\n", res.body)
    assert.equal("17", res.headers["Content-Length"])
    assert.same({ "17" }, res.headers:get_all("content-length"))
    assert(logged(srv, "GET /hello%.txt HTTP/2%.0\n"))
  end)

  it("keeps HTTP/1.1 with http_version = \"1.1\", on a server that offers h2", function()
    local res = assert(https.get(base .. "/hello.txt", opts { http_version = "1.1" }))
    assert.equal("1.1", res.version)
    assert.equal("http/1.1", res.tls.alpn)
    assert(logged(srv, "GET /hello%.txt HTTP/1%.1\n"))
  end)

  it("speaks HTTP/1.1 to a server that offers only it, and refuses it with http_version = \"2\"", function()
    local h1 = "https://127.0.0.1:" .. srv.port
    local res = assert(https.get(h1 .. "/hello.txt", opts()))
    assert.equal("1.1", res.version)
    local none, err = https.get(h1 .. "/hello.txt", opts { http_version = "2" })
    assert.is_nil(none)
    assert.matches("^alpn: the server did not agree to HTTP/2", err)
    assert.has_error(function() https.get(h1, opts { http_version = 2 }) end,
      "tls.https: option 'http_version' must be \"1.1\" or \"2\", got 2")
    local _, perr = https.get("http://127.0.0.1:" .. srv.http_port .. "/", opts {
      http_version = "2", insecure_http = true })
    assert.matches("needs https", perr)
  end)

  it("downloads a 20 MiB body intact", function()
    local path = os.tmpname()
    local res = assert(https.fetch(opts { url = base .. "/big.bin", sink = file_sink(path) }))
    assert.equal("2", res.version)
    assert.equal(ngx.sha256sum(srv.www .. "/big.bin"), ngx.sha256sum(path))
    os.remove(path)
  end)

  it("gives the receive window back as the body is consumed (a 64 KiB window, 20 MiB)", function()
    with_window(65535, function()
      local path = os.tmpname()
      local seen = 0
      local res = assert(https.fetch(opts { url = base .. "/big.bin", sink = file_sink(path),
        progress = function(n) seen = n end }))
      assert.equal(200, res.status)
      assert.equal(20971520, seen)
      assert.equal(ngx.sha256sum(srv.www .. "/big.bin"), ngx.sha256sum(path))
      os.remove(path)
    end)
  end)

  it("sends 100 requests at once on one connection (request_all)", function()
    local before = opened()
    local list = {}
    for i = 1, 100 do list[i] = base .. (i % 2 == 0 and "/hello.txt" or "/method") end
    local log_size, N = #read(srv.dir .. "/access.log"), 100
    local responses, errors = https.request_all(list, opts())
    for i = 1, 100 do
      assert(responses[i], errors[i])
      assert.equal(i % 2 == 0 and "hello from nginx\n" or "GET \n", responses[i].body)
      assert.equal("2", responses[i].version)
    end
    assert.equal(1, opened() - before)
    local serials, count = serials_after(srv, log_size, N)
    assert.equal(N, count)
    assert.equal(1, #serials)
  end)

  it("keeps the pooled HTTP/2 connection for later calls", function()
    local before = opened()
    for _ = 1, 3 do assert(https.get(base .. "/hello.txt", opts())) end
    assert.equal(1, opened() - before)
    assert.equal(1, https.pool_stats().h2_connections)
  end)

  it("uploads bodies larger than the server's windows (string, and source with Content-Length)", function()
    local data = ("0123456789abcdef"):rep(200000)   -- 3.2 MB
    local res = assert(https.fetch(opts { url = base .. "/upload/h2.bin", method = "PUT", body = data }))
    assert.is_true(res.status == 201 or res.status == 204)
    assert.equal(data, read(srv.www .. "/upload/h2.bin"))
    local i = 0
    res = assert(https.fetch(opts { url = base .. "/upload/h2src.bin", method = "PUT",
      headers = { ["Content-Length"] = #data },
      source = function()
        i = i + 1
        if i <= 100 then return data:sub((i - 1) * 32000 + 1, i * 32000) end
      end }))
    assert.is_true(res.status == 201 or res.status == 204)
    assert.equal(data, read(srv.www .. "/upload/h2src.bin"))
  end)

  it("follows redirects over HTTP/2 (a 303 turns a POST into a GET)", function()
    local res = assert(https.post(base .. "/r303", "x", opts()))
    assert.equal("GET \n", res.body)
    assert.equal("2", res.version)
  end)

  it("sends a large request header block as HEADERS and CONTINUATION frames", function()
    local big = ("x"):rep(40000)
    local res = assert(https.get(base .. "/echo-headers", opts { headers = { ["X-Big"] = big } }))
    assert.equal(big .. "\n", res.body)
  end)

  it("keeps the HPACK tables in step while entries are evicted", function()
    local list = {}
    for i = 1, 60 do
      -- 60 distinct 700-byte values: the 4 KiB tables evict all the time
      list[i] = { url = base .. "/echo-headers", headers = { ["X-Big"] = ("%03d"):format(i):rep(233) } }
    end
    local responses, errors = https.request_all(list, opts())
    for i = 1, 60 do
      assert(responses[i], errors[i])
      assert.equal(("%03d"):format(i):rep(233) .. "\n", responses[i].body)
    end
  end)
end)

describe("tls.https over HTTP/2 under cqueues (nginx)", function()
  local cqueues = require "cqueues"
  local srv, base

  ngx.fixture(function(s)
    srv = s
    base = "https://127.0.0.1:" .. srv.h2_port
  end)

  before_each(function() https.pool_clear() end)

  -- runs the functions as coroutines of one controller; -> errors raised
  local function run(fns) return cq_run(120, (table.unpack or unpack)(fns)) end

  it("multiplexes the requests of 20 coroutines over one connection", function()
    local before = opened()
    local log_size, N = #read(srv.dir .. "/access.log"), 200
    local got, fns = {}, {}
    for c = 1, 20 do
      fns[c] = function()
        for i = 1, 10 do
          local res, err = https.get(base .. "/hello.txt", opts())
          got[#got + 1] = res and res.body or err
        end
      end
    end
    assert.same({}, run(fns))
    assert.equal(200, #got)
    for i = 1, 200 do assert.equal("hello from nginx\n", got[i]) end
    assert.equal(1, opened() - before)
    local serials, count = serials_after(srv, log_size, N)
    assert.equal(N, count)
    assert.equal(1, #serials)
  end)

  it("delivers each coroutine its own large body, intact", function()
    local want = ngx.sha256sum(srv.www .. "/big.bin")
    local paths, fns = {}, {}
    for c = 1, 4 do
      paths[c] = os.tmpname()
      fns[c] = function()
        assert(https.fetch(opts { url = base .. "/big.bin", sink = file_sink(paths[c]) }))
      end
    end
    assert.same({}, run(fns))
    for c = 1, 4 do
      assert.equal(want, ngx.sha256sum(paths[c]))
      os.remove(paths[c])
    end
  end)

  it("a sink that raises ends the shared connection: the others get an error, none hangs", function()
    local results, fns = {}, {}
    for c = 1, 5 do
      fns[c] = function()
        -- tls.cqueues.pcall: a pcall the fetch's I/O can yield through, on Lua 5.1 too
        local ok, res, err = require("tls.cqueues").pcall(https.fetch, opts { url = base .. "/big.bin",
          sink = function(chunk)
            if c == 1 and chunk then error("sink exploded") end
            return 1
          end })
        results[c] = ok and (res and "ok" or err) or ("raised: " .. tostring(res))
      end
    end
    run(fns)
    assert.matches("sink exploded", results[1])
    for c = 2, 5 do assert.is_string(results[c]) end
  end)
end)

describe("tls.https over HTTP/2 against nghttpd", function()
  local www

  setup(function()
    pki.setup()
    www = os.tmpname()
    os.remove(www)
    os.execute("mkdir -p " .. www .. " && head -c 5000000 /dev/urandom > " .. www .. "/big.bin")
    pki.write(www .. "/hello.txt", "hello from nghttpd\n")
    pki.write(www .. "/index.html", "<p>index</p>\n")
  end)

  teardown(function()
    https.pool_clear()
    os.execute("rm -rf " .. www)
  end)

  before_each(function() https.pool_clear() end)

  local function with_server(args, fn)
    local srv = h2_peers.nghttpd(pki.server, www, args)
    local ok, err = pcall(fn, "https://127.0.0.1:" .. srv.port)
    srv.stop()
    if not ok then error(err, 0) end
  end

  it("refuses server push (SETTINGS_ENABLE_PUSH 0): a push would end the connection", function()
    with_server("-p /index.html=/hello.txt,/big.bin", function(base)
      for _ = 1, 2 do
        local res = assert(https.get(base .. "/index.html", opts()))
        assert.equal("<p>index</p>\n", res.body)
      end
    end)
  end)

  it("reads trailers into res.trailers", function()
    with_server("--trailer 'x-checksum: abc'", function(base)
      local res = assert(https.get(base .. "/hello.txt", opts()))
      assert.equal("hello from nghttpd\n", res.body)
      assert.equal("abc", res.trailers["X-Checksum"])
    end)
  end)

  it("keeps to the server's limit of concurrent streams (10), 60 requests on one connection", function()
    with_server("-m 10", function(base)
      local before = opened()
      local list = {}
      for i = 1, 60 do list[i] = base .. "/hello.txt" end
      local responses, errors = https.request_all(list, opts())
      for i = 1, 60 do assert.equal("hello from nghttpd\n", assert(responses[i], errors[i]).body) end
      assert.equal(1, opened() - before)
    end)
  end)

  it("downloads 10 bodies of 5 MB at once, intact, with a small window", function()
    with_server("", function(base)
      with_window(65535, function()
        local want = ngx.sha256sum(www .. "/big.bin")
        local list, paths = {}, {}
        for i = 1, 10 do
          paths[i] = os.tmpname()
          list[i] = { url = base .. "/big.bin", sink = file_sink(paths[i]) }
        end
        local responses, errors = https.request_all(list, opts())
        for i = 1, 10 do
          assert(responses[i], errors[i])
          assert.equal(want, ngx.sha256sum(paths[i]))
          os.remove(paths[i])
        end
      end)
    end)
  end)

  it("follows the smaller HPACK table the server asks for (table size 0)", function()
    with_server("-c 0", function(base)
      local before = opened()
      for i = 1, 3 do
        local res = assert(https.get(base .. "/hello.txt", opts { headers = { ["X-N"] = tostring(i) } }))
        assert.equal("hello from nghttpd\n", res.body)
      end
      assert.equal(1, opened() - before)
    end)
  end)

  it("reads padded frames", function()
    with_server("-b 255", function(base)
      local path = os.tmpname()
      assert(https.fetch(opts { url = base .. "/big.bin", sink = file_sink(path) }))
      assert.equal(ngx.sha256sum(www .. "/big.bin"), ngx.sha256sum(path))
      os.remove(path)
    end)
  end)
end)

describe("tls.https over HTTP/2 against a scripted frame server", function()
  setup(function() pki.setup() end)
  teardown(function() https.pool_clear() end)
  before_each(function() https.pool_clear() end)

  local function with_scenario(name, fn)
    local srv = h2_peers.frames(pki.server, name)
    local ok, err = pcall(fn, "https://127.0.0.1:" .. srv.port)
    srv.stop()
    if not ok then error(err, 0) end
  end

  local function fails(name, pattern, extra)
    with_scenario(name, function(base)
      local res, err = https.get(base .. "/", opts(extra))
      assert.is_nil(res)
      assert.matches(pattern, err)
    end)
  end

  it("reads a response header block split over CONTINUATION frames", function()
    with_scenario("continuation", function(base)
      local res = assert(https.get(base .. "/", opts()))
      assert.equal(("b"):rep(40000), res.headers["x-big"])
      assert.equal("ok", res.body)
    end)
  end)

  it("reads trailers sent after the body", function()
    with_scenario("trailers", function(base)
      local res = assert(https.get(base .. "/", opts()))
      assert.equal("body", res.body)
      assert.equal("abc", res.trailers["x-checksum"])
    end)
  end)

  it("sends requests above a GOAWAY's last stream id again on a new connection", function()
    with_scenario("goaway", function(base)
      local before = opened()
      local responses, errors = https.request_all({ base .. "/a", base .. "/b", base .. "/c" }, opts())
      assert.equal("first", assert(responses[1], errors[1]).body)
      assert.matches("^hello %d+$", assert(responses[2], errors[2]).body)
      assert.matches("^hello %d+$", assert(responses[3], errors[3]).body)
      assert.equal(2, opened() - before)
      assert.is_true(https.pool_stats().retried >= 2)
    end)
  end)

  it("sends a refused stream (REFUSED_STREAM) again, even a POST", function()
    with_scenario("refused", function(base)
      local res = assert(https.post(base .. "/", "data", opts()))
      assert.matches("^hello %d+$", res.body)
    end)
  end)

  it("ends a PING flood with a clear error", function()
    fails("ping-flood", "without any response data %(a flood%?%) %(ENHANCE_YOUR_CALM%)")
  end)

  it("ends a SETTINGS flood with a clear error", function()
    fails("settings-flood", "%(a flood%?%) %(ENHANCE_YOUR_CALM%)")
  end)

  it("ends a flood of empty DATA frames with a clear error", function()
    fails("empty-data-flood", "%(a flood%?%) %(ENHANCE_YOUR_CALM%)")
  end)

  it("ends an endless header block (CONTINUATION flood) at max_header_size", function()
    fails("continuation-flood", "header block over 65536 bytes %(option max_header_size%)")
    fails("continuation-flood", "header block over 20000 bytes", { max_header_size = 20000 })
  end)

  it("ends a flood of empty CONTINUATION frames", function()
    fails("empty-continuation-flood", "%(a flood%?%) %(ENHANCE_YOUR_CALM%)")
  end)

  it("refuses a header list that HPACK references blow up (an HPACK bomb)", function()
    fails("hpack-bomb", "header list is over 65536 bytes")
  end)

  it("refuses an HPACK table larger than the one it allows", function()
    fails("table-size", "table size update to 1048576, over our limit of 4096 %(COMPRESSION_ERROR%)")
  end)

  it("refuses a frame over its SETTINGS_MAX_FRAME_SIZE without reading it", function()
    fails("big-frame", "a DATA frame of 16777215 bytes, over our SETTINGS_MAX_FRAME_SIZE of 16384 %(FRAME_SIZE_ERROR%)")
  end)

  it("refuses a PUSH_PROMISE", function()
    fails("push", "PUSH_PROMISE although we set SETTINGS_ENABLE_PUSH to 0 %(PROTOCOL_ERROR%)")
  end)

  it("refuses a flow-control window over 2^31-1", function()
    fails("window-overflow", "connection window went over 2%^31%-1 %(FLOW_CONTROL_ERROR%)")
  end)

  it("refuses upper-case header names (a malformed response)", function()
    fails("uppercase", "malformed response: an upper%-case header name \"X%-Upper\"")
  end)

  it("refuses DATA on a stream it never opened", function()
    fails("data-unopened", "DATA on stream 7, which we never opened %(PROTOCOL_ERROR%)")
  end)

  -- 20 digits: a float on 5.3+, which %d cannot format
  it("refuses a content-length too large for a byte count with an error, not a raise", function()
    fails("huge-length", "http2: malformed response: bad content%-length \"9+\"")
  end)

  it("gives up on a silent server after the timeout", function()
    fails("silent", "^timeout$", { timeout = 0.5 })
  end)
end)
