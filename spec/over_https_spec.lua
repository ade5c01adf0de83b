-- tls.https on any host: the transport option and the host it picks by
-- default. Inside cqueues, the server under test runs as a coroutine of the
-- same controller as the client: it can only answer if the client's waits
-- yield to the loop, so a blocking client fails these specs (by its
-- handshake timeout) instead of passing slowly.
local tls = require "tls"
local https = require "tls.https"
local pki = require "support.pki"
local cq_run = require("support.cq").run
local peers = require "support.peers"
local cqueues = require "cqueues"
local csocket = require "cqueues.socket"

local function listen()
  local l = assert(csocket.listen { host = "127.0.0.1", port = 0 })
  assert(l:listen())
  local _, _, port = l:localname()
  return l, port
end

-- Serve one HTTPS request on listener l inside the controller: read the
-- head, wait until ready() says so, answer `body` and close.
local function serve_one(l, body, ready)
  local s = assert(tls.over(tls.transport.cqueues(assert(l:accept())), { mode = "server",
    cert_file = pki.server.cert, key_file = pki.server.key, timeout = 10 }))
  local request = assert(s:receive("*l"))
  repeat local line = assert(s:receive("*l")) until line == ""
  while ready and not ready() do cqueues.sleep(0.02) end
  assert(s:send("HTTP/1.1 200 OK\r\nContent-Length: " .. #body
    .. "\r\nConnection: close\r\n\r\n" .. body))
  s:close()
  return request
end

local function run(...) return cq_run(60, ...) end

describe("tls.https on any host", function()
  setup(function() pki.setup() end)
  teardown(function() pki.cleanup() end)
  after_each(peers.run_deferred)

  it("picks blocking sockets outside any event loop, cqueues inside a controller", function()
    assert.equal("socket", tls.transport.here())
    local inside, nested
    assert.same({}, run(function()
      inside = tls.transport.here()
      nested = coroutine.wrap(function() return tls.transport.here() end)()
    end))
    assert.equal("cqueues", inside)
    -- a plain coroutine inside a cqueues one would not pass its yields on
    assert.equal("socket", nested)
  end)

  it("inside cqueues, a slow https.get lets other coroutines run", function()
    local l, port = listen()
    local ticks, res, err, request = 0, nil, nil, nil
    local errs = run(function()
      -- answers only after the ticker has ticked 5 times during the request
      request = serve_one(l, "hello from a coroutine", function() return ticks >= 5 end)
    end, function()
      res, err = https.get("https://127.0.0.1:" .. port .. "/slow",
        { ca_file = pki.ca.cert, timeout = 20 })
    end, function()
      while res == nil and err == nil do
        cqueues.sleep(0.05)
        ticks = ticks + 1
      end
    end)
    l:close()
    assert.same({}, errs)
    assert.is_nil(err)
    assert.equal(200, res.status)
    assert.equal("hello from a coroutine", res.body)
    assert.equal("GET /slow HTTP/1.1", request)
    assert.is_true(ticks >= 5)
    assert.matches("^TLSv1%.[23]$", res.tls.version)
  end)

  it("inside cqueues, reports a certificate that does not verify", function()
    local l, port = listen()
    local res, err
    local errs = run(function()
      pcall(serve_one, l, "never")
    end, function()
      res, err = https.get("https://127.0.0.1:" .. port .. "/", { ca_file = pki.other_ca.cert,
        timeout = 20 })
    end)
    l:close()
    assert.same({}, errs)
    assert.is_nil(res)
    assert.is_true(tls.is_verify_error(err), err)
  end)

  it("uses a transport function (host, port, opts) -> transport", function()
    local srv = peers.scripted(pki.server, [[return function(conn)
      repeat local line = conn:receive("*l") until line == "" or not line
      conn:send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    end]])
    peers.defer(srv.stop)
    local calls = {}
    local res, err = https.get("https://127.0.0.1:" .. srv.port .. "/", {
      ca_file = pki.ca.cert, timeout = 10,
      transport = function(host, port, opts)
        calls[#calls + 1] = { host, port, opts.timeout }
        return tls.transport.connect("socket", host, port, opts.timeout)
      end,
    })
    assert.is_nil(err)
    assert.equal("ok", res.body)
    assert.same({ { "127.0.0.1", srv.port, 10 } }, calls)
  end)

  it("does not reuse a pooled conn the server closed while it sat idle (a POST is not retried)", function()
    -- the first connection is answered as keep-alive and closed with
    -- close_notify once the client has it in its pool (file go); the file
    -- closed says when that close went out
    local go, marker = os.tmpname(), os.tmpname()
    os.remove(go)
    os.remove(marker)
    peers.defer(function() os.remove(go); os.remove(marker) end)
    local srv = peers.scripted(pki.server, ([[
      local n = 0
      return function(conn)
        n = n + 1
        local length = 0
        repeat
          local line = conn:receive("*l")
          length = tonumber(line and line:match("^[Cc]ontent%%-[Ll]ength: *(%%d+)")) or length
        until line == "" or not line
        if length > 0 then conn:receive(length) end
        conn:send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n" .. n)
        if n == 1 then
          for _ = 1, 500 do
            if io.open(%q, "rb") then break end
            require("socket").sleep(0.02)
          end
          conn:close()
          io.open(%q, "wb"):close()
        else
          conn:receive("*l")
        end
      end]]):format(go, marker))
    peers.defer(srv.stop)
    https.pool_clear()
    peers.defer(https.pool_clear)
    local opts = { ca_file = pki.ca.cert, servername = "localhost", timeout = 10,
      transport = function(host, port, o) return tls.transport.connect("socket", host, port, o.timeout) end }
    local url = "https://127.0.0.1:" .. srv.port .. "/"
    assert.equal("1", assert(https.post(url, "first", opts)).body)
    io.open(go, "wb"):close()
    for _ = 1, 500 do
      if io.open(marker, "rb") then break end
      require("socket").sleep(0.02)
    end
    assert.truthy(io.open(marker, "rb"), "the server did not close the first connection")
    local before = https.pool_stats()
    local res, err = https.post(url, "second", opts)
    assert.is_nil(err)
    assert.equal("2", res.body)
    local after = https.pool_stats()
    assert.equal(before.discarded + 1, after.discarded)
    assert.equal(before.reused, after.reused)
  end)

  it("says what is not supported over tls.over, and refuses a bad transport", function()
    local res, err = https.get("https://127.0.0.1:9/", { transport = "cqueues",
      proxy = "http://127.0.0.1:9" })
    assert.is_nil(res)
    assert.equal('proxy: proxies work only with transport = "socket" (blocking sockets), '
      .. 'not with transport = "cqueues"', err)
    -- a transport function's failure reaches the caller with a reason
    assert.same({ nil, "nope" }, { https.get("https://127.0.0.1:9/",
      { transport = function() return nil, "nope" end }) })
    assert.same({ nil, "connect: the transport function returned no transport and no error" },
      { https.get("https://127.0.0.1:9/", { transport = function() return nil end }) })
    assert.has_error(function() https.get("https://127.0.0.1:9/", { transport = "luv" }) end,
      'tls.https: option \'transport\' must be "socket", "cqueues", "ngx" or a function '
      .. '(host, port, opts) -> transport, got "luv"')
  end)
end)
