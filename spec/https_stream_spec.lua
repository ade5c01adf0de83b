-- tls.https pull-style responses (stream = true) against nginx, over
-- HTTP/1.1 and HTTP/2: read, iter, lines, close, and what happens to the
-- connection after each.

local pki = require "support.pki"
local ngx = require "support.https_nginx"
local https = require "tls.https"

local read = pki.read

local opts = ngx.options { timeout = 20, stream = true }

local function opened() return https.pool_stats().connections_opened end

describe("tls.https stream = true against nginx", function()
  local srv

  ngx.fixture(function(s)
    srv = s
  end)

  before_each(function() https.pool_clear() end)

  for _, v in ipairs { "1.1", "2" } do
    local function url(path)
      return "https://127.0.0.1:" .. (v == "2" and srv.h2_port or srv.port) .. path
    end

    it("returns after the head; res:read(n) and res:read(\"a\") take the body (HTTP/" .. v .. ")", function()
      local res = assert(https.get(url("/hello.txt"), opts()))
      assert.equal(v, res.version)
      assert.equal(200, res.status)
      assert.is_nil(res.body)
      assert.equal("hello", res:read(5))
      for _, bad in ipairs { 1.5, 0, "x" } do
        assert.has_error(function() res:read(bad) end,
          "tls.https: res:read(n) takes a byte count or \"a\", got " .. tostring(bad))
      end
      assert.equal(" from nginx\n", res:read("a"))
      assert.is_nil(res:read(1))
    end)

    it("iterates a 20 MiB body in chunks of at most the size asked, intact (HTTP/" .. v .. ")", function()
      local res = assert(https.get(url("/big.bin"), opts()))
      local path = os.tmpname()
      local f = assert(io.open(path, "wb"))
      local biggest = 0
      for chunk in res:iter(10000) do
        f:write(chunk)
        if #chunk > biggest then biggest = #chunk end
      end
      f:close()
      assert.is_true(biggest > 0 and biggest <= 10000)
      assert.equal(ngx.sha256sum(srv.www .. "/big.bin"), ngx.sha256sum(path))
      os.remove(path)
    end)

    it("reads lines (HTTP/" .. v .. ")", function()
      local res = assert(https.get(url("/chunked/big.txt"), opts()))
      local want, n = {}, 0
      for line in read(srv.www .. "/chunked/big.txt"):gmatch("([^\n]*)\n") do want[#want + 1] = line end
      for line in res:lines() do
        n = n + 1
        if line ~= want[n] then error("line " .. n .. " differs") end
      end
      assert.equal(#want, n)
    end)

    it("bounds a line: a body that never sends LF fails at res:lines' limit (HTTP/" .. v .. ")", function()
      local f = assert(io.open(srv.www .. "/noline.txt", "wb"))
      f:write(("x"):rep(3 * 1024 * 1024))
      f:close()
      local res = assert(https.get(url("/noline.txt"), opts()))
      local ok, err = pcall(function() for _ in res:lines() do end end)
      assert.is_false(ok)
      assert.matches("tls.https: a line of the body is over 1048576 bytes %(res:lines%(max%) sets the bound%)", err)
      assert.is_nil(res:read(1))  -- the request ended there
      -- a larger bound takes the whole line
      res = assert(https.get(url("/noline.txt"), opts()))
      local lines = {}
      for line in res:lines(4 * 1024 * 1024) do lines[#lines + 1] = #line end
      assert.same({ 3 * 1024 * 1024 }, lines)
    end)

    it("keeps the connection for the next request after the body was read to its end (HTTP/" .. v .. ")", function()
      local before = opened()
      local res = assert(https.get(url("/hello.txt"), opts()))
      assert.equal("hello from nginx\n", res:read("a"))
      assert.equal("hello from nginx\n", assert(https.get(url("/hello.txt"), { ca_file = pki.ca.cert })).body)
      assert.equal(1, opened() - before)
    end)
  end

  it("res:close() before the end closes an HTTP/1.1 connection (it is not reused)", function()
    local base = "https://127.0.0.1:" .. srv.port
    local before = opened()
    local res = assert(https.get(base .. "/big.bin", opts()))
    assert.equal(100, #res:read(100))
    assert.is_true(res:close())
    assert.is_nil(res:read(1))
    assert(https.get(base .. "/hello.txt", { ca_file = pki.ca.cert }))
    assert.equal(2, opened() - before)
  end)

  it("res:close() before the end resets only its HTTP/2 stream: the connection goes on", function()
    local base = "https://127.0.0.1:" .. srv.h2_port
    local before = opened()
    local res = assert(https.get(base .. "/big.bin", opts()))
    assert.equal(100, #res:read(100))
    assert.is_true(res:close())
    assert.equal("hello from nginx\n", assert(https.get(base .. "/hello.txt", { ca_file = pki.ca.cert })).body)
    assert.equal(1, opened() - before)
  end)

  it("reports an error in the middle of the body from read, and raises it from iter", function()
    local base = "https://127.0.0.1:" .. srv.port
    local res = assert(https.get(base .. "/big.bin", opts { max_body = 100000 }))
    local got, err = res:read("a")
    assert.is_nil(got)
    assert.matches("response body is over 100000 bytes", err)
    res = assert(https.get(base .. "/big.bin", opts { max_body = 100000 }))
    assert.has_error(function() for _ in res:iter() do end end)
  end)

  it("works inside cqueues: the host's own yields pass through the reader", function()
    local cqueues = require "cqueues"
    local cq = cqueues.new()
    local sums = {}
    for _, port in ipairs { srv.port, srv.h2_port } do
      cq:wrap(function()
        local res = assert(https.get("https://127.0.0.1:" .. port .. "/big.bin", opts()))
        local path = os.tmpname()
        local f = assert(io.open(path, "wb"))
        -- res:read in a loop, not res:iter(): plain Lua 5.1 cannot yield
        -- from inside a for loop's iterator
        while true do
          local chunk = assert(res:read(65536) or "")
          if chunk == "" then break end
          f:write(chunk)
        end
        f:close()
        sums[#sums + 1] = ngx.sha256sum(path)
        os.remove(path)
      end)
    end
    local deadline = cqueues.monotime() + 60
    while not cq:empty() do
      assert(cq:step(0.5))
      assert(cqueues.monotime() < deadline, "coroutines did not finish in time")
    end
    local want = ngx.sha256sum(srv.www .. "/big.bin")
    assert.same({ want, want }, sums)
  end)

  it("refuses a sink with stream = true", function()
    assert.has_error(function()
      https.get("https://127.0.0.1:" .. srv.port .. "/", opts { sink = function() return 1 end })
    end, "tls.https: give either 'sink' or stream = true, not both")
  end)
end)
