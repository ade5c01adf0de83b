-- tls.https against a misbehaving HTTPS server written here (on the
-- module, through spec/peers/scripted_server.lua): every broken answer
-- gives nil and a clear message, never a hang.

local pki = require "support.pki"
local peers = require "support.peers"
local proc = require "support.proc"
local https = require "tls.https"

-- Per connection: read the request head, then misbehave as the path says:
-- /huge-line sends one header line that never ends (the client must stop at
-- its limit), /trickle a byte every 50 ms (only a total deadline ends it),
-- /trickle-body a whole header block and then its body a byte every 50 ms,
-- /silent nothing until the client leaves, /keep answers keep-alive and
-- then drops the connection when the next request arrives on it, /cookies
-- repeats a header. /counted is /keep that counts every request it reads
-- (the dropped one too); /count answers that count.
local HANDLER = [==[
local socket = require "socket"
local counted = 0
-- the request line and head, and the body by its Content-Length: path | nil
local function read_request(conn)
  local line = conn:receive("*l")
  if not line then return nil end
  local length = 0
  repeat
    local h = conn:receive("*l")
    local n = h and h:lower():match("^content%-length:%s*(%d+)")
    if n then length = tonumber(n) end
  until not h or h == ""
  if length > 0 then conn:receive(length) end
  return line:match("^%S+ (%S+)")
end
return function(conn)
  local path = read_request(conn)
  if not path then return end
  local function send(s) return conn:send(s) end
  if path == "/counted" then
    counted = counted + 1
    send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    if read_request(conn) then counted = counted + 1 end
  elseif path == "/count" then
    send(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%d")
      :format(#tostring(counted), counted))
    counted = 0
  elseif path == "/endless-chunked" or path == "/endless-close" or path == "/huge-length" then
    local chunked = path == "/endless-chunked"
    send("HTTP/1.1 200 OK\r\n" .. (chunked and "Transfer-Encoding: chunked\r\n"
      or path == "/huge-length" and "Content-Length: 1000000000000\r\n" or "") .. "\r\n")
    local block = ("z"):rep(16384)
    if chunked then block = ("%x\r\n"):format(#block) .. block .. "\r\n" end
    -- until the client gives up
    while send(block) do end
  elseif path == "/many-headers" then
    local h = { "HTTP/1.1 200 OK\r\n" }
    for i = 1, 300 do h[#h + 1] = ("X-%d: %d\r\n"):format(i, i) end
    send(table.concat(h) .. "Content-Length: 2\r\n\r\nok")
  elseif path == "/redirect-endless" then
    send("HTTP/1.1 302 Found\r\nLocation: /cookies\r\n\r\n")
    local block = ("r"):rep(16384)
    while send(block) do end
  elseif path == "/keep-open" then
    -- keep-alive answers until the client leaves
    repeat
      send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    until not read_request(conn)
  elseif path == "/garbage" then
    send("SSH-2.0-OpenSSH_9.2\r\nProtocol mismatch.\r\n")
  elseif path == "/bad-status" then
    send("HTTP/1.1 two hundred OK\r\n\r\n")
  elseif path == "/bad-header" then
    send("HTTP/1.1 200 OK\r\nthis is not a header\r\n\r\n")
  elseif path == "/silent-close" then
  elseif path == "/truncated-head" then
    send("HTTP/1.1 200 OK\r\nContent-Le")
  elseif path == "/truncated-body" then
    send("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" .. ("x"):rep(500))
  elseif path == "/truncated-chunked" then
    send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n20\r\nabc")
  elseif path == "/bad-chunk" then
    send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
  elseif path == "/huge-chunk" then
    send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n")
  elseif path == "/long-chunk" then
    send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n")
  elseif path == "/bad-length" then
    send("HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\nhello")
  elseif path == "/two-lengths" then
    send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
  elseif path == "/huge-header" then
    send("HTTP/1.1 200 OK\r\n")
    local pad = ("a"):rep(1000)
    for i = 1, 80 do
      if not send(("X-Pad-%d: %s\r\n"):format(i, pad)) then return end
    end
    send("Content-Length: 0\r\n\r\n")
  elseif path == "/huge-line" then
    send("HTTP/1.1 200 OK\r\nX-Long: ")
    local pad = ("b"):rep(8192)
    for _ = 1, 200 do
      if not send(pad) then return end
    end
    conn:receive("*a")
  elseif path == "/trickle" then
    send("HTTP/1.1 200 OK\r\n")
    for _ = 1, 2000 do
      if not send("X") then return end
      socket.sleep(0.05)
    end
  elseif path == "/trickle-body" then
    send("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    for _ = 1, 2000 do
      if not send("Y") then return end
      socket.sleep(0.05)
    end
  elseif path == "/cookies" then
    send("HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nContent-Length: 2\r\n"
      .. "set-cookie: b=2\r\nConnection: close\r\n\r\nok")
  elseif path == "/method-names" then
    send("HTTP/1.1 200 OK\r\nGet: x\r\nEach: y\r\nGet: z\r\nContent-Length: 2\r\n"
      .. "Connection: close\r\n\r\nok")
  elseif path == "/silent" then
    conn:settimeout(30)
    conn:receive("*a")
  elseif path == "/keep" then
    send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    conn:receive("*l")
  elseif path == "/to-close" then
    send("HTTP/1.1 200 OK\r\n\r\nuntil the close")
  elseif path == "/gzip-te" then
    send("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nnot framed by length")
  elseif path == "/interim" then
    send("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
  end
end
]==]

describe("tls.https error paths", function()
  local srv, base, handler_file

  setup(function()
    pki.setup()
    -- the handler goes through a file: a shell command line would join its lines
    handler_file = os.tmpname()
    local f = assert(io.open(handler_file, "wb"))
    f:write(HANDLER)
    f:close()
    srv = peers.scripted(pki.server, ("return dofile(%q)"):format(handler_file))
    base = "https://127.0.0.1:" .. srv.port
  end)

  teardown(function()
    https.pool_clear()
    if srv then srv.stop() end
    if handler_file then os.remove(handler_file) end
    pki.cleanup()
  end)

  local function get(path, extra)
    local o = { ca_file = pki.ca.cert, timeout = 5, total_timeout = 20 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return https.get(base .. path, o)
  end

  local function fails(path, pattern, extra)
    local res, err = get(path, extra)
    assert.is_nil(res, path .. " should fail")
    assert.is_string(err)
    assert.matches(pattern, err)
    return err
  end

  describe("malformed responses", function()
    it("rejects garbage instead of a status line", function()
      fails("/garbage", "^malformed response: bad status line \"SSH%-2%.0")
    end)

    it("rejects a bad status code", function()
      fails("/bad-status", "^malformed response: bad status line")
    end)

    it("rejects a header line without a colon", function()
      fails("/bad-header", "^malformed response: bad header line \"this is not a header\"")
    end)

    it("rejects a bad or conflicting Content-Length", function()
      fails("/bad-length", "^malformed response: bad Content%-Length \"12abc\"")
      fails("/two-lengths", "^malformed response: bad Content%-Length")
    end)

    it("keeps repeated headers: get_all in order, each() line by line", function()
      local res = assert(get("/cookies"))
      local h = res.headers
      assert.same({ "a=1", "b=2" }, h:get_all("SET-COOKIE"))
      assert.same({ "a=1", "b=2" }, h:get_all("set-cookie"))
      assert.same({}, h:get_all("X-Absent"))
      -- the plain table joins them, as LuaSocket does
      assert.equal("a=1, b=2", h["Set-Cookie"])
      local seen = {}
      for name, value in h:each() do seen[#seen + 1] = name .. "=" .. value end
      -- every line as received: original case of the names, arrival order
      assert.same({ "Set-Cookie=a=1", "Content-Length=2", "set-cookie=b=2", "Connection=close" }, seen)
    end)

    -- a server must not be able to replace the methods of res.headers
    it("keeps its methods when the server sends headers named get or each", function()
      local res = assert(get("/method-names"))
      local h = res.headers
      assert.equal("x, z", h:get("GET"))
      assert.equal("y", h:get("each"))
      assert.same({ "x", "z" }, h:get_all("get"))
      local n = 0
      for _ in h:each() do n = n + 1 end
      assert.equal(5, n)
      assert.equal("2", h["content-length"])
    end)

    it("skips a 100 Continue before the real answer", function()
      local res = assert(get("/interim"))
      assert.equal(200, res.status)
      assert.equal("ok", res.body)
    end)
  end)

  describe("truncated responses", function()
    it("reports a server that closes without answering", function()
      fails("/silent-close", "^truncated response: the server closed the connection without answering")
    end)

    it("reports a close inside the header block", function()
      fails("/truncated-head", "^truncated response: the connection closed in the header block")
    end)

    it("reports a body shorter than its Content-Length", function()
      fails("/truncated-body", "^truncated response: the connection closed after 500 of 1000 body bytes")
    end)

    it("reports a close inside a chunked body", function()
      fails("/truncated-chunked", "^truncated response: the connection closed in a chunk")
    end)
  end)

  describe("bad chunks", function()
    it("rejects a chunk size that is not hex", function()
      fails("/bad-chunk", "^bad chunk size \"zz\"")
    end)

    it("rejects a chunk size too large to be real", function()
      fails("/huge-chunk", "^bad chunk size \"f+\" %(too large%)")
    end)

    it("rejects chunk data longer than its size", function()
      fails("/long-chunk", "^bad chunk: the data is longer than its chunk size")
    end)
  end)

  describe("header limits", function()
    it("stops at 64 KiB of headers", function()
      fails("/huge-header", "^response header block is over 65536 bytes %(option max_header_size%)")
    end)

    it("stops at a single endless header line without waiting for its end", function()
      fails("/huge-line", "^response header block is over 65536 bytes")
    end)

    it("stops at 256 header lines (option max_headers)", function()
      assert.equal(256, https.MAX_HEADERS)
      fails("/many-headers", "^response has over 256 header lines %(option max_headers%)$")
      fails("/many-headers", "^response has over 20 header lines", { max_headers = 20 })
      assert.equal("ok", assert(get("/many-headers", { max_headers = 301 })).body)
    end)

    it("takes a smaller limit", function()
      fails("/huge-header", "^response header block is over 4096 bytes",
        { max_header_size = 4096 })
    end)
  end)

  describe("body limits", function()
    -- the client's Lua heap over one call, sampled at each body block
    local function peak_heap_during(path, extra)
      collectgarbage()
      local base, peak = collectgarbage("count"), 0
      local o = { progress = function()
        local kb = collectgarbage("count") - base
        if kb > peak then peak = kb end
      end }
      for k, v in pairs(extra or {}) do o[k] = v end
      local res, err = get(path, o)
      return res, err, peak
    end

    it("ends an endless chunked body kept in memory at max_body, in bounded memory", function()
      local res, err, peak = peak_heap_during("/endless-chunked", { max_body = 1048576 })
      assert.is_nil(res)
      assert.equal("response body is over 1048576 bytes (option max_body; give a sink or "
        .. "stream = true to read a larger body)", err)
      assert.is_true(peak < 16 * 1024, "heap grew by " .. peak .. " KiB")
    end)

    it("ends an endless body delimited by the close at max_body", function()
      local res, err = get("/endless-close", { max_body = 100000 })
      assert.is_nil(res)
      assert.matches("^response body is over 100000 bytes %(option max_body", err)
    end)

    it("refuses a Content-Length over the default max_body before reading the body", function()
      assert.equal(64 * 1024 * 1024, https.MAX_BODY)
      local res, err, peak = peak_heap_during("/huge-length")
      assert.is_nil(res)
      assert.equal("response body is over 67108864 bytes (option max_body; give a sink or "
        .. "stream = true to read a larger body): the server announced 1000000000000", err)
      assert.equal(0, peak)   -- not one body block was read
    end)

    it("streams to a sink without a limit unless max_body is given", function()
      local n = 0
      local function sink(chunk)
        if chunk then n = n + #chunk end
        if n > 3 * 1048576 then return nil, "enough" end
        return 1
      end
      local res, err = get("/endless-chunked", { sink = sink, max_body = 1048576 * 2 })
      assert.is_nil(res)
      assert.equal("response body is over 2097152 bytes (option max_body; math.huge for no limit)", err)
      -- without max_body, the sink alone decides when to stop
      n = 0
      res, err = get("/endless-chunked", { sink = sink })
      assert.is_nil(res)
      assert.equal("sink: enough", err)
    end)

    it("bounds the body that the LuaSocket form drops when given no sink", function()
      -- the default limit, made small here (https.MAX_BODY is the knob)
      local saved = https.MAX_BODY
      https.MAX_BODY = 100000
      finally(function() https.MAX_BODY = saved end)
      local ok, err = https.request { url = base .. "/endless-close", ca_file = pki.ca.cert,
        timeout = 5, total_timeout = 20 }
      assert.is_nil(ok)
      assert.matches("^response body is over 100000 bytes", err)
    end)

    it("bounds the dropped body of a redirect too", function()
      local res, err = get("/redirect-endless", { max_body = 100000 })
      assert.is_nil(res)
      assert.equal("response body is over 100000 bytes (option max_body; it bounds a followed "
        .. "redirect's body too: raise it, or redirect = false)", err)
    end)

    it("refuses stream = true where responses are not pulled one at a time", function()
      assert.error_matches(function()
        https.request_all({ base .. "/cookies", { url = base .. "/cookies", stream = true } },
          { ca_file = pki.ca.cert })
      end, "tls.https.request_all: entry 2: stream = true is for one request at a time", 1, true)
      assert.error_matches(function()
        https.request { url = base .. "/cookies", ca_file = pki.ca.cert, stream = true }
      end, "tls.https.request: stream = true is for https.fetch", 1, true)
    end)

    it("names max_body's way out for a pull-style body (a sink is refused there)", function()
      local res = assert(get("/endless-chunked", { stream = true, max_body = 100000 }))
      local body, err = res:read("a")
      assert.is_nil(body)
      assert.equal("response body is over 100000 bytes (option max_body; math.huge for no limit)", err)
      res:close()
    end)

    it("refuses a max_body that is not a whole number of bytes", function()
      assert.has_error(function() get("/cookies", { max_body = -1 }) end,
        "tls.https: option 'max_body' must be a whole number of bytes (math.huge for no limit), got -1")
      assert.error_matches(function() get("/cookies", { max_body = "1" }) end,
        "tls.https: option 'max_body' must be a whole number of bytes", 1, true)
    end)
  end)

  describe("timeouts", function()
    it("times out a server that says nothing (per-read timeout)", function()
      fails("/silent", "^timeout$", { timeout = 0.5 })
    end)

    it("bounds every read by default (https.TIMEOUT) when no timeout is given", function()
      -- a shorter default, so the spec need not wait 60 s; without one the
      -- read would wait for the server to give up (30 s) instead
      local saved = https.TIMEOUT
      assert.equal(60, saved)
      https.TIMEOUT = 0.5
      local core = require "tls.core"
      local t0 = core.now()
      local ok, res, err = pcall(https.get, base .. "/silent", { ca_file = pki.ca.cert })
      https.TIMEOUT = saved
      assert.is_true(ok, res)
      assert.is_nil(res)
      assert.equal("timeout", err)
      assert.is_true(core.now() - t0 < 10, "hung")
    end)

    it("ends a slow trickle with the total deadline", function()
      fails("/trickle", "^timeout$", { timeout = 5, total_timeout = 1 })
    end)

    it("ends a body that trickles after the header block with the total deadline", function()
      local core = require "tls.core"
      local t0 = core.now()
      fails("/trickle-body", "^timeout$", { timeout = 5, total_timeout = 1 })
      assert.is_true(core.now() - t0 < 10, "hung")
    end)

    it("times out a connect that gets no answer from a full backlog", function()
      -- a listener nobody accepts on, with its backlog filled: SYNs go unanswered
      local core = require "tls.core"
      local l = assert(core.listen("127.0.0.1", "0", 0))
      local _, port = l:getsockname()
      local socket = require "socket"
      local fillers = {}
      for i = 1, 4 do
        fillers[i] = socket.tcp()
        fillers[i]:settimeout(0.2)
        fillers[i]:connect("127.0.0.1", port)
      end
      -- only connect_timeout is short: the others would turn a miss into a hang
      local t0 = core.now()
      local res, err = https.get("https://127.0.0.1:" .. port .. "/",
        { ca_file = pki.ca.cert, connect_timeout = 0.5, handshake_timeout = 30, timeout = 30 })
      local took = core.now() - t0
      for _, s in ipairs(fillers) do s:close() end
      l:close()
      assert.is_nil(res)
      assert.equal("timeout", err)
      assert.is_true(took < 10, "hung")
    end)

    it("times out a handshake with a listener that never speaks TLS", function()
      -- the kernel completes the TCP connect; nobody ever answers the ClientHello
      local core = require "tls.core"
      local l = assert(core.listen("127.0.0.1", "0", 8))
      local _, port = l:getsockname()
      local t0 = core.now()
      local res, err = https.get("https://127.0.0.1:" .. port .. "/",
        { ca_file = pki.ca.cert, connect_timeout = 30, handshake_timeout = 0.5, timeout = 30 })
      local took = core.now() - t0
      l:close()
      assert.is_nil(res)
      assert.equal("timeout", err)
      assert.is_true(took < 10, "hung")
    end)
  end)

  describe("TLS options", function()
    local tls = require "tls"

    it("go through the library's config path: a changed ca_file is read again", function()
      -- tls.https keeps no config cache of its own; a ca_file is cached only
      -- by its stamp, and one changed in the last 2 seconds not at all
      local ca = os.tmpname()
      finally(function() os.remove(ca); https.pool_clear() end)
      pki.write(ca, pki.read(pki.ca.cert))
      assert.equal("ok", assert(https.get(base .. "/cookies", { ca_file = ca, timeout = 5 })).body)
      pki.write(ca, pki.read(pki.other_ca.cert))
      local res, err = https.get(base .. "/cookies", { ca_file = ca, timeout = 5 })
      assert.is_nil(res, "a stale CA file was used")
      assert.is_true(tls.is_verify_error(err), err)
    end)

    it("share pooled connections while equal, and build no config for a pooled request", function()
      https.pool_clear()
      local before = https.pool_stats()
      local builds, config_for = 0, tls.config_for
      tls.config_for = function(...) builds = builds + 1; return config_for(...) end
      finally(function() tls.config_for = config_for; https.pool_clear() end)
      for _ = 1, 3 do
        -- a fresh but equal option table each time
        assert.equal("ok", assert(https.get(base .. "/keep-open", { ca_file = pki.ca.cert, timeout = 5 })).body)
      end
      assert.equal(1, https.pool_stats().connections_opened - before.connections_opened)
      assert.equal(1, builds)
    end)

    it("raise on misuse at the first connection, naming the option", function()
      assert.has_error(function() https.get(base .. "/cookies", { ca_fil = pki.ca.cert }) end,
        "tls.https: unknown option 'ca_fil' (the closest known option is 'ca_file')")
      assert.has_error(function() https.get(base .. "/cookies", { config = {} }) end,
        "tls.https: option 'config' must be a tls.config, got table")
    end)

    it("that fail (a missing file) give nil and the message", function()
      local res, err = https.get(base .. "/cookies", { ca_file = "/nonexistent/ca.pem" })
      assert.is_nil(res)
      assert.matches("^ca_file: cannot read '/nonexistent/ca.pem'", err)
    end)

  end)

  describe("a reused connection the server drops", function()
    it("is retried once on a new connection", function()
      https.pool_clear()
      local before = https.pool_stats()
      assert.equal("ok", assert(get("/keep")).body)
      local res = assert(get("/keep"))
      assert.equal("ok", res.body)
      local after = https.pool_stats()
      assert.equal(1, after.retried - before.retried)
      assert.equal(2, after.connections_opened - before.connections_opened)
      https.pool_clear()
    end)

    it("is never pooled when its body ran to the close", function()
      -- no Content-Length, or a last transfer coding other than chunked
      -- (which overrides Content-Length): the body ends at the close
      https.pool_clear()
      local before = https.pool_stats()
      assert.equal("until the close", assert(get("/to-close")).body)
      assert.equal("not framed by length", assert(get("/gzip-te")).body)
      local after = https.pool_stats()
      assert.equal(0, after.idle)
      assert.equal(0, after.discarded - before.discarded)
      assert.equal(2, after.connections_opened - before.connections_opened)
    end)

    local function counted(method, extra)
      local o = { url = base .. "/counted", method = method, body = method == "POST" and "x" or nil,
        ca_file = pki.ca.cert, timeout = 5, total_timeout = 20 }
      for k, v in pairs(extra or {}) do o[k] = v end
      return https.fetch(o)
    end

    -- (the server serves one connection at a time: first close the pooled one)
    local function requests_seen()
      https.pool_clear()
      return tonumber(assert(get("/count")).body)
    end

    it("is not retried for a POST, which the server may have acted on", function()
      https.pool_clear()
      requests_seen()
      local before = https.pool_stats()
      assert.equal("ok", assert(counted("POST")).body)
      local res, err = counted("POST")
      assert.is_nil(res)
      assert.matches("a POST is not sent twice unless retry_non_idempotent = true", err, 1, true)
      assert.equal(0, https.pool_stats().retried - before.retried)
      -- the server read two POSTs: the answered one and the dropped one, no third
      assert.equal(2, requests_seen())
    end)

    it("is retried for a POST with retry_non_idempotent = true", function()
      https.pool_clear()
      requests_seen()
      assert(counted("POST"))
      local res = assert(counted("POST", { retry_non_idempotent = true }))
      assert.equal("ok", res.body)
      assert.equal(3, requests_seen())
    end)

    it("is retried for a GET, which may be sent twice", function()
      https.pool_clear()
      requests_seen()
      assert(counted("GET"))
      assert.equal("ok", assert(counted("GET")).body)
      assert.equal(3, requests_seen())
      https.pool_clear()
    end)

    it("refuses a retry_non_idempotent that is not a boolean", function()
      assert.has_error(function() counted("POST", { retry_non_idempotent = 1 }) end,
        "tls.https: option 'retry_non_idempotent' must be a boolean, got number")
    end)

    it("is not retried when the body was a stream", function()
      https.pool_clear()
      assert(get("/keep"))
      local sent = false
      local before = https.pool_stats()
      local res, err = https.fetch { url = base .. "/keep", method = "PUT", ca_file = pki.ca.cert,
        body = function() if not sent then sent = true; return "data" end end }
      assert.is_nil(res)
      -- the drop shows in the send ("closed") or in the read, as timing has it
      assert.is_true(err == "closed"
        or err:find("^truncated response: the server closed the connection without answering") ~= nil, err)
      assert.equal(0, https.pool_stats().retried - before.retried)
      https.pool_clear()
    end)
  end)

  it("leaves no descriptors behind after all these failures", function()
    https.pool_clear()
    collectgarbage()
    collectgarbage()
    local before = proc.fds()
    for _, path in ipairs { "/garbage", "/truncated-body", "/bad-chunk", "/huge-header" } do
      assert.is_nil((get(path)))
    end
    https.pool_clear()
    collectgarbage()
    collectgarbage()
    assert.equal(before, proc.fds())
  end)
end)

describe("tls.https and a policy that raises", function()
  local echo
  setup(function()
    pki.setup()
    echo = peers.echo(pki.server)
  end)
  teardown(function()
    https.pool_clear()
    if echo then echo.stop() end
  end)

  local fds = proc.fds_now  -- (no collection first: nothing may be left to the collector)

  it("closes the connection (and its transport) before the error goes on", function()
    local tls = require "tls"
    local socket = require "socket"
    -- 5.1 has no "isrunning": there the collector runs unless a spec stopped it
    local has_isrunning, running = pcall(collectgarbage, "isrunning")
    running = not has_isrunning or running
    collectgarbage("stop")  -- nothing is left to the collector
    finally(function() if running then collectgarbage("restart") end end)
    local before = fds()
    local transports = {
      "socket",
      function(host, port)
        local s = socket.tcp()
        s:settimeout(10)
        assert(s:connect(host, port))
        return tls.transport.socket(s)
      end,
    }
    for _, transport in ipairs(transports) do
      local ok, err = pcall(https.request, { url = "https://localhost:" .. echo.port .. "/",
        ca_file = pki.ca.cert, timeout = 10, transport = transport,
        policy = function() error("the policy broke") end })
      assert.is_false(ok)
      assert.matches("the policy broke", err, 1, true)
      assert.equal(before, fds(), type(transport))
    end
  end)
end)
