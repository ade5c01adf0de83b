-- tls.https over HTTP/2 against what a hostile or broken server sends, one
-- violation per case, from the raw frame server
-- (spec/peers/h2_frames_server.py): each must end the request with an error
-- that names the violation, never a wrong success, a hang or a raise.
-- Scenarios "block:HEX" (one response header block), "frames:HEX" (raw frames
-- after the request; SS is its stream id) and "body:CL:DATA[:cut]".

local pki = require "support.pki"
local h2_peers = require "support.h2_peers"
local https = require "tls.https"

local function opts(extra)
  local o = { ca_file = pki.ca.cert, timeout = 20 }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

local function with_scenario(name, fn)
  local srv = h2_peers.frames(pki.server, name)
  local ok, err = pcall(fn, "https://127.0.0.1:" .. srv.port)
  srv.stop()
  if not ok then error(err, 0) end
end

-- the request fails with an error matching pattern
local function fails(name, pattern, extra)
  with_scenario(name, function(base)
    local res, err = https.get(base .. "/", opts(extra))
    assert.is_nil(res, "a response where an error was due")
    assert.is_string(err)
    assert.matches(pattern, err)
  end)
end

-- hex of a raw frame
local function frame(ftype, flags, sid, payload)
  return ("%06x%02x%02x%s%s"):format(#payload / 2, ftype, flags, sid, payload)
end
local SS = "SS"

local function hex(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end

describe("tls.https over HTTP/2 refuses a hostile header block", function()
  setup(function() pki.setup() end)
  teardown(function() https.pool_clear() end)
  before_each(function() https.pool_clear() end)

  it("refuses HPACK index 0 and an index past the table", function()
    fails("block:8880", "a bad header block: index 0 %(COMPRESSION_ERROR%)")
    fails("block:88bf", "index 63 is past the table %(61 entries%) %(COMPRESSION_ERROR%)")
  end)

  it("refuses an HPACK integer over 2^31 (endless continuation bytes)", function()
    fails("block:88ff" .. ("ff"):rep(40) .. "7f", "an integer over 2%^31 %(COMPRESSION_ERROR%)")
    fails("block:88ff" .. ("80"):rep(40) .. "01", "an integer over 2%^31 %(COMPRESSION_ERROR%)")
  end)

  it("refuses a string longer than its header block", function()
    -- a value of 5 bytes with 2 left; then a length of 2^28
    fails("block:88000161056162", "a string longer than its header block %(COMPRESSION_ERROR%)")
    fails("block:880001617fffffff7f", "a string longer than its header block")
  end)

  it("refuses Huffman strings with EOS, long padding or padding with zeros", function()
    -- "a" is 00011: 0x1f is "a" padded with ones, 0x18 with zeros
    fails("block:8800016184ffffffff", "a bad Huffman string %(the EOS symbol inside a string%)")
    fails("block:88000161821fff", "a bad Huffman string %(padding longer than 7 bits or not all ones%)")
    fails("block:880001618118", "a bad Huffman string %(padding longer than 7 bits or not all ones%)")
    with_scenario("block:8800016181" .. "1f", function(base)
      assert.equal("a", assert(https.get(base .. "/", opts())).headers.a)
    end)
  end)

  it("takes a table size update up to its limit first in a block, none after a field", function()
    -- 0x3fe11f: an update to 4096 (our SETTINGS_HEADER_TABLE_SIZE); 0x3fe21f: 4097
    with_scenario("block:3fe11f88", function(base)
      assert.equal(200, assert(https.get(base .. "/", opts())).status)
    end)
    fails("block:3fe21f88", "a table size update to 4097, over our limit of 4096 %(COMPRESSION_ERROR%)")
    fails("block:8820", "a table size update after a header field %(COMPRESSION_ERROR%)")
  end)

  it("refuses a missing, invalid, repeated or misplaced :status", function()
    fails("block:0001610162", "malformed response: no valid :status %(got \"nil\"%)")
    fails("block:0803" .. hex("abc"), "malformed response: no valid :status %(got \"abc\"%)")
    fails("block:8888", "malformed response: a misplaced or repeated :status")
    fails("block:0001610162" .. "88", "malformed response: a misplaced or repeated :status")
    -- three digits, but no status code: not an interim response to skip
    fails("block:0803" .. hex("099"), "malformed response: no valid :status %(got \"099\"%)")
  end)

  it("refuses request pseudo-headers and connection-specific headers in a response", function()
    fails("block:8804012f", "malformed response: the pseudo%-header :path in a response")
    fails("block:880f2a07" .. hex("chunked"), "malformed response: the connection%-specific header transfer%-encoding")
    fails("block:8800" .. "0a" .. hex("connection") .. "05" .. hex("close"),
      "malformed response: the connection%-specific header connection")
  end)
end)

describe("tls.https over HTTP/2 refuses hostile frames", function()
  setup(function() pki.setup() end)
  teardown(function() https.pool_clear() end)
  before_each(function() https.pool_clear() end)

  local HEAD = frame(1, 4, SS, "88")          -- :status 200, END_HEADERS
  local ZERO = "00000000"

  it("refuses padding longer than the frame (DATA, HEADERS)", function()
    fails("frames:" .. HEAD .. frame(0, 8, SS, "056869"), "DATA padding longer than the frame %(PROTOCOL_ERROR%)")
    fails("frames:" .. frame(1, 12, SS, "0588"), "HEADERS padding longer than the frame %(PROTOCOL_ERROR%)")
  end)

  it("refuses SETTINGS out of range", function()
    fails("frames:" .. frame(4, 0, ZERO, "000480000000"),
      "SETTINGS_INITIAL_WINDOW_SIZE over 2%^31%-1 %(FLOW_CONTROL_ERROR%)")
    fails("frames:" .. frame(4, 0, ZERO, "000500000064"), "SETTINGS_MAX_FRAME_SIZE of 100 %(PROTOCOL_ERROR%)")
    fails("frames:" .. frame(4, 0, ZERO, "000501000000"), "SETTINGS_MAX_FRAME_SIZE of 16777216")
    fails("frames:" .. frame(4, 0, ZERO, "000200000001"), "a server set SETTINGS_ENABLE_PUSH to 1 %(PROTOCOL_ERROR%)")
    fails("frames:" .. frame(4, 0, ZERO, "0004000000"), "a SETTINGS payload of 5 bytes %(FRAME_SIZE_ERROR%)")
    fails("frames:" .. frame(4, 1, ZERO, "000400000000"), "a SETTINGS ack with a payload %(FRAME_SIZE_ERROR%)")
    fails("frames:" .. frame(4, 0, SS, ""), "SETTINGS on a stream %(PROTOCOL_ERROR%)")
    -- a stream window 10 over the initial one, then an initial window of
    -- 2^31-1 and back in one frame: the window went over on the way
    fails("frames:" .. frame(8, 0, SS, "0000000a") .. frame(4, 0, ZERO, "00047fffffff00040000ffff"),
      "a stream window over 2%^31%-1 %(FLOW_CONTROL_ERROR%)")
  end)

  it("refuses a WINDOW_UPDATE of 0 and windows over 2^31-1 (connection and stream)", function()
    fails("frames:" .. frame(8, 0, ZERO, ZERO), "a WINDOW_UPDATE of 0 %(PROTOCOL_ERROR%)")
    fails("frames:" .. frame(8, 0, SS, ZERO), "^http2: a WINDOW_UPDATE of 0$")
    fails("frames:" .. frame(8, 0, SS, "7fffffff"), "^http2: a stream window went over 2%^31%-1$")
    fails("frames:" .. frame(8, 0, ZERO, "7fffffff"), "connection window went over 2%^31%-1 %(FLOW_CONTROL_ERROR%)")
    fails("frames:" .. frame(8, 0, ZERO, "000001"), "a WINDOW_UPDATE of 3 bytes %(FRAME_SIZE_ERROR%)")
  end)

  it("refuses a header block interrupted, continued on another stream, or never begun", function()
    local open = frame(1, 0, SS, "88")  -- HEADERS without END_HEADERS
    fails("frames:" .. open .. frame(6, 0, ZERO, ZERO .. ZERO), "a header block was interrupted by a PING frame")
    fails("frames:" .. open .. frame(9, 4, "00000003", ""), "a header block was interrupted by a CONTINUATION frame")
    fails("frames:" .. open .. frame(0, 1, SS, "00"), "a header block was interrupted by a DATA frame")
    fails("frames:" .. frame(9, 4, SS, "88"), "a CONTINUATION without HEADERS %(PROTOCOL_ERROR%)")
  end)

  it("refuses frames on the wrong stream", function()
    fails("frames:" .. frame(1, 5, ZERO, "88"), "HEADERS on stream 0 %(PROTOCOL_ERROR%)")
    fails("frames:" .. frame(0, 1, ZERO, "00"), "DATA on stream 0 %(PROTOCOL_ERROR%)")
    fails("frames:" .. frame(1, 5, "00000002", "88"), "HEADERS on stream 2, which we never opened")
    fails("frames:" .. frame(1, 5, "00000063", "88"), "HEADERS on stream 99, which we never opened")
    fails("frames:" .. frame(3, 0, "00000063", ZERO), "RST_STREAM on stream 99, which we never opened")
    fails("frames:" .. frame(3, 0, ZERO, ZERO), "RST_STREAM on stream 0 %(PROTOCOL_ERROR%)")
    fails("frames:" .. frame(6, 0, SS, ZERO .. ZERO), "PING on a stream %(PROTOCOL_ERROR%)")
    fails("frames:" .. frame(7, 0, SS, ZERO .. ZERO), "GOAWAY on a stream %(PROTOCOL_ERROR%)")
  end)

  it("refuses frames of the wrong size", function()
    fails("frames:" .. frame(6, 0, ZERO, ZERO), "a PING of 4 bytes %(FRAME_SIZE_ERROR%)")
    fails("frames:" .. frame(7, 0, ZERO, ZERO), "a GOAWAY of 4 bytes %(FRAME_SIZE_ERROR%)")
    fails("frames:" .. frame(3, 0, SS, "00"), "an RST_STREAM of 1 bytes %(FRAME_SIZE_ERROR%)")
    fails("frames:" .. frame(2, 0, SS, "00"), "a PRIORITY of 1 bytes %(FRAME_SIZE_ERROR%)")
    fails("frames:" .. frame(1, 36, SS, "88"), "a HEADERS frame too short for its flags %(FRAME_SIZE_ERROR%)")
  end)

  it("refuses a server that does not begin with SETTINGS (its connection preface)", function()
    fails("http1", "^http2: the server answered in HTTP/1 although it agreed to h2 in ALPN %(PROTOCOL_ERROR%)$")
    -- (a HEADERS frame: type 1 after the 3-byte length)
    fails("no-settings", '^http2: the server began with "\\x00\\x00\\x..\\x01.*", not with SETTINGS %(PROTOCOL_ERROR%)$')
  end)

  it("answers a stream below a GOAWAY's last stream id, then leaves the connection", function()
    -- a last stream id above anything sent, then the answer
    with_scenario("frames:" .. frame(7, 0, ZERO, "7fffffff" .. ZERO) .. frame(1, 5, SS, "88"), function(base)
      assert.equal(200, assert(https.get(base .. "/", opts())).status)
      assert.equal(0, https.pool_stats().h2_connections)
    end)
  end)

  it("reports the server's reset of a stream", function()
    fails("frames:" .. HEAD .. frame(3, 0, SS, "00000002"), "^http2: the server reset the stream %(INTERNAL_ERROR%)$")
  end)
end)

describe("tls.https over HTTP/2 checks the body against its framing", function()
  setup(function() pki.setup() end)
  teardown(function() https.pool_clear() end)
  before_each(function() https.pool_clear() end)

  it("refuses fewer or more DATA bytes than the content-length", function()
    fails("body:10:hello", "malformed response: 5 body bytes for a content%-length of 10")
    fails("body:2:hello", "malformed response: more body bytes than its content%-length of 2")
    with_scenario("body:5:hello", function(base)
      assert.equal("hello", assert(https.get(base .. "/", opts())).body)
    end)
  end)

  it("reports a connection cut in the body as truncated, with or without a content-length", function()
    fails("body:10:hello:cut", "^truncated response: the server closed the HTTP/2 connection")
    fails("body:-:hello:cut", "^truncated response: the server closed the HTTP/2 connection")
  end)

  it("does not send a request again after part of its answer arrived (GOAWAY or REFUSED_STREAM after DATA)", function()
    for _, name in ipairs { "goaway-after-data", "refused-after-data" } do
      with_scenario(name, function(base)
        local got = {}
        local res, err = https.fetch(opts { url = base .. "/", sink = function(chunk)
          got[#got + 1] = chunk
          return 1
        end })
        assert.is_nil(res, name .. ": the request was sent again, its sink got: " .. table.concat(got, "|"))
        assert.matches("^http2: ", err)
        assert.equal("part", table.concat(got))
      end)
    end
  end)
end)

describe("tls.https over HTTP/2: lifetimes of pooled sessions and pull-style responses (nginx)", function()
  local ngx = require "support.https_nginx"
  local cq_run = require("support.cq").run
  local base
  local BIG = 20971520   -- nginx's big.bin

  ngx.fixture(function(s) base = "https://127.0.0.1:" .. s.h2_port end)
  before_each(function() https.pool_clear() end)

  -- cqueues.sleep(0) until ready() (each coroutine waits on the other's progress, not on time)
  local function until_(ready)
    local cqueues = require "cqueues"
    while not ready() do cqueues.sleep(0) end
  end


  it("https.pool_clear() while a pull-style response is read leaves that response readable", function()
    local res = assert(https.get(base .. "/big.bin", opts { stream = true }))
    assert.equal(100, #res:read(100))
    https.pool_clear()
    local rest, err = res:read("a")
    assert.is_string(rest, err)
    assert.equal(BIG - 100, #rest)
    assert.equal(0, https.pool_stats().h2_connections)
  end)

  it("a pull-style response left unread and unclosed does not keep later requests off the pool", function()
    local before = https.pool_stats().connections_opened
    local res = assert(https.get(base .. "/big.bin", opts { stream = true }))
    assert.equal(10, #res:read(10))
    for _ = 1, 3 do assert.equal("hello from nginx\n", assert(https.get(base .. "/hello.txt", opts())).body) end
    -- one connection for the open response, one pooled for the rest
    assert.equal(2, https.pool_stats().connections_opened - before)
    assert.equal(BIG - 10, #assert(res:read("a")))
  end)

  it("a sink that makes a request to the same origin gets its answer (blocking and under cqueues)", function()
    local function fetch_with_nested()
      local inner
      local res = assert(https.fetch(opts { url = base .. "/hello.txt", timeout = 10, sink = function(chunk)
        if chunk and not inner then
          inner = assert(https.get(base .. "/hello.txt", opts { timeout = 10 })).body
        end
        return 1
      end }))
      assert.equal(200, res.status)
      assert.equal("hello from nginx\n", inner)
      assert.equal("hello from nginx\n", assert(https.get(base .. "/hello.txt", opts { timeout = 10 })).body)
    end
    fetch_with_nested()
    https.pool_clear()
    assert.same({}, cq_run(60, fetch_with_nested))
  end)

  it("under cqueues, a request from a sink does not drive its connection from inside the sink", function()
    local got = { plain = 0 }
    assert.same({}, cq_run(60, function()
      -- (tls.cqueues.pcall: a pcall the fetch's I/O can yield through, on 5.1 too)
      local ok, res, err = require("tls.cqueues").pcall(https.fetch, opts { url = base .. "/big.bin",
        timeout = 10, sink = function(chunk)
        -- (joining the session this coroutine drives, the request below
        -- would hand the rest of this body to this sink, re-entered)
        assert(not got.in_sink, "the sink was re-entered")
        got.in_sink = true
        got.plain = got.plain + #(chunk or "")
        if not got.inner then
          got.inner = assert(https.get(base .. "/hello.txt", opts { timeout = 10 })).body
        end
        require("cqueues").sleep(0)
        got.in_sink = false
        return 1
      end })
      got.done = true
      assert(ok, res)
      assert(res, err)
    end, function()
      -- another coroutine joins while the sink sleeps
      until_(function() return got.inner or got.done end)
      got.other = assert(https.get(base .. "/hello.txt", opts { timeout = 10 })).body
    end))
    assert.equal(BIG, got.plain)
    assert.equal("hello from nginx\n", got.inner)
    assert.equal("hello from nginx\n", got.other)
  end)

  it("under cqueues, a request while a pull-style response is open in the same coroutine goes on", function()
    assert.same({}, cq_run(60, function()
      local res = assert(https.get(base .. "/big.bin", opts { stream = true, timeout = 10 }))
      assert.equal(100, #res:read(100))
      local other = assert(https.get(base .. "/hello.txt", opts { timeout = 10 }))
      assert.equal("hello from nginx\n", other.body)
      local rest = assert(res:read("a"))
      assert.equal(BIG - 100, #rest)
    end))
  end)

  it("under cqueues, a pull-style response joins no connection another coroutine drives", function()
    local got = { plain = 0 }
    assert.same({}, cq_run(60, function()
      -- a plain download drives the shared connection (its sink lets the
      -- other coroutine run) ...
      assert(https.fetch(opts { url = base .. "/big.bin", timeout = 10, sink = function(chunk)
        got.plain = got.plain + #(chunk or "")
        require("cqueues").sleep(0)
        return 1
      end }))
      got.done = true
    end, function()
      -- ... while a pull-style response asks for the same origin: its head
      -- and body must reach its own reader, not the driver's coroutine
      until_(function() return got.plain > 0 end)
      local res = assert(https.get(base .. "/hello.txt", opts { stream = true, timeout = 10 }))
      got.stream = assert(res:read("a"))
    end))
    assert.is_true(got.done)
    assert.equal(BIG, got.plain)
    assert.equal("hello from nginx\n", got.stream)
  end)

  it("under cqueues, a pull-style response left unread does not hold up another coroutine", function()
    local got = {}
    assert.same({}, cq_run(60, function()
      local res = assert(https.get(base .. "/big.bin", opts { stream = true, timeout = 10 }))
      got.head = true
      -- read on only once the other coroutine has its answer
      until_(function() return got.other end)
      got.rest = #assert(res:read("a"))
    end, function()
      until_(function() return got.head end)
      got.other = assert(https.get(base .. "/hello.txt", opts { timeout = 10 })).body
    end))
    assert.equal("hello from nginx\n", got.other)
    assert.equal(BIG, got.rest)
  end)
end)

describe("tls.https over HTTP/2 against a server that keeps it busy", function()
  setup(function() pki.setup() end)
  teardown(function() https.pool_clear() end)
  before_each(function() https.pool_clear() end)

  it("counts DATA on a closed stream as no progress (a flood that answers nothing)", function()
    with_scenario("closed-data-flood", function(base)
      local responses, errors = https.request_all({ base .. "/a", base .. "/b" }, opts { total_timeout = 60 })
      assert.equal("first", assert(responses[1], errors[1]).body)
      assert.is_false(responses[2])
      assert.matches("%(a flood%?%) %(ENHANCE_YOUR_CALM%)", errors[2])
    end)
  end)

  -- (each frame costs work per byte: 10000 of them took 88 s of CPU with
  -- SETTINGS, 11 s with header blocks, before the bound on bytes)
  it("bounds the bytes of frames without progress: full SETTINGS frames over 100 open streams", function()
    with_scenario("settings-window-flood", function(base)
      local list = {}
      for i = 1, 100 do list[i] = base .. "/" .. i end
      local _, errors = https.request_all(list, opts())
      assert.matches("sent over 4194304 bytes of frames in a row without any response data "
        .. "%(a flood%?%) %(ENHANCE_YOUR_CALM%)", errors[1])
    end)
  end)

  it("bounds the bytes of frames without progress: header blocks on a closed stream", function()
    with_scenario("headers-closed-flood", function(base)
      local responses, errors = https.request_all({ base .. "/a", base .. "/b" }, opts())
      assert.equal("first", assert(responses[1], errors[1]).body)
      assert.matches("sent over 4194304 bytes of frames in a row without any response data", errors[2])
    end)
  end)

  it("refuses a body in the answer to HEAD, and in a 204", function()
    local HEAD_CL = frame(1, 4, SS, "880f0d0135")  -- :status 200, content-length: 5
    with_scenario("frames:" .. HEAD_CL .. frame(0, 1, SS, hex("hello")), function(base)
      local res, err = https.head(base .. "/", opts())
      assert.is_nil(res)
      assert.matches("malformed response: a body in the answer to HEAD", err)
    end)
    fails("frames:" .. frame(1, 4, SS, "89") .. frame(0, 1, SS, hex("hello")),
      "malformed response: a body in a 204 response")
  end)

  it("gives up on a server that stops reading an upload, after the timeout", function()
    with_scenario("no-read", function(base)
      local res, err = https.fetch(opts { url = base .. "/", method = "PUT", timeout = 1,
        body = ("x"):rep(64 * 1024 * 1024) })
      assert.is_nil(res)
      assert.equal("timeout", err)
    end)
  end)

  it("request_all: a stream the server resets fails alone; the others get their answers", function()
    with_scenario("reset-second", function(base)
      local before = https.pool_stats().connections_opened
      local responses, errors = https.request_all({ base .. "/a", base .. "/b", base .. "/c" }, opts())
      assert.equal("first", assert(responses[1], errors[1]).body)
      assert.is_false(responses[2])
      assert.equal("http2: the server reset the stream (INTERNAL_ERROR)", errors[2])
      assert.matches("^hello %d+$", assert(responses[3], errors[3]).body)
      assert.equal(1, https.pool_stats().connections_opened - before)
    end)
  end)
end)

describe("tls.https over HTTP/2: sessions that end under a response (frame server)", function()
  setup(function() pki.setup() end)
  teardown(function() https.pool_clear() end)
  before_each(function() https.pool_clear() end)

  it("does not reuse a pooled session after its GOAWAY", function()
    with_scenario("goaway-idle", function(base)
      local before = https.pool_stats().connections_opened
      assert.equal("first", assert(https.get(base .. "/a", opts())).body)
      assert.matches("^hello %d+$", assert(https.get(base .. "/b", opts())).body)
      assert.equal(2, https.pool_stats().connections_opened - before)
    end)
  end)

  it("a stream = true response whose connection is cut reports truncation from read", function()
    for _, name in ipairs { "body:10:hello:cut", "body:-:hello:cut" } do
      with_scenario(name, function(base)
        local res = assert(https.get(base .. "/", opts { stream = true }))
        local got, err = res:read("a")
        assert.is_nil(got)
        assert.matches("^truncated response: the server closed the HTTP/2 connection", err)
        assert.is_nil(res:read(1))
      end)
    end
  end)
end)

describe("tls.https over HTTP/2: callbacks that raise (nginx, blocking)", function()
  local ngx = require "support.https_nginx"
  local base

  ngx.fixture(function(s) base = "https://127.0.0.1:" .. s.h2_port end)
  before_each(function() https.pool_clear() end)

  for _, which in ipairs { "sink", "progress" } do
    it("a " .. which .. " that raises: the error reaches the caller, the next request gets a fresh connection", function()
      local before = https.pool_stats().connections_opened
      assert(https.get(base .. "/hello.txt", opts()))
      local o = opts { url = base .. "/big.bin" }
      o[which] = function() error(which .. " exploded") end
      local ok, err = pcall(https.fetch, o)
      assert.is_false(ok)
      assert.matches(which .. " exploded", err)
      assert.equal(0, https.pool_stats().h2_connections)
      assert.equal("hello from nginx\n", assert(https.get(base .. "/hello.txt", opts())).body)
      assert.equal(2, https.pool_stats().connections_opened - before)
    end)
  end
end)

describe("tls.https over HTTP/2: a pooled session the server closed while idle (frame server)", function()
  local cq_run = require("support.cq").run
  setup(function() pki.setup() end)
  teardown(function() https.pool_clear() end)
  before_each(function() https.pool_clear() end)

  -- the server closes the first connection once the client has it pooled;
  -- then a POST (never sent twice) must go on a new connection
  -- (run(fn): runs fn where the requests are made; plain pcall around a
  -- coroutine's body cannot be yielded through on Lua 5.1)
  local function post_after_close(wait, run)
    local go, mark = os.tmpname(), os.tmpname()
    os.remove(go)
    os.remove(mark)
    with_scenario("close-idle:" .. go .. ":" .. mark, function(base)
      local before = https.pool_stats().connections_opened
      run(function()
        assert.equal("first", assert(https.get(base .. "/a", opts())).body)
        io.open(go, "wb"):close()
        while not io.open(mark, "rb") do wait() end
        assert.matches("^hello %d+$", assert(https.post(base .. "/b", "data", opts())).body)
      end)
      assert.equal(2, https.pool_stats().connections_opened - before)
    end)
    os.remove(go)
    os.remove(mark)
  end

  it("with blocking sockets", function()
    post_after_close(function() os.execute("sleep 0.02") end, function(fn) fn() end)
  end)

  it("under cqueues (tls.over, whose receive at timeout 0 reads nothing new)", function()
    post_after_close(function() require("cqueues").sleep(0.02) end, function(fn)
      assert.same({}, cq_run(60, fn))
    end)
  end)
end)

describe("tls.https over HTTP/2: a frame that arrived while the session sat idle (frame server)", function()
  local cq_run = require("support.cq").run
  setup(function() pki.setup() end)
  teardown(function() https.pool_clear() end)
  before_each(function() https.pool_clear() end)

  -- the server sends a PING once the client has the session pooled; the
  -- next request reuses the session, which answers the PING (a probe of the
  -- idle conn that ate the frame's first byte misread every frame after it)
  local function request_after_ping(wait, run)
    local go, mark = os.tmpname(), os.tmpname()
    os.remove(go)
    os.remove(mark)
    with_scenario("ping-idle:" .. go .. ":" .. mark, function(base)
      local before = https.pool_stats().connections_opened
      run(function()
        assert.equal("first", assert(https.get(base .. "/a", opts())).body)
        io.open(go, "wb"):close()
        while not io.open(mark, "rb") do wait() end
        assert.equal("hello 3", assert(https.get(base .. "/b", opts { timeout = 5 })).body)
      end)
      assert.equal(1, https.pool_stats().connections_opened - before)
    end)
    os.remove(go)
    os.remove(mark)
  end

  it("with blocking sockets", function()
    request_after_ping(function() os.execute("sleep 0.02") end, function(fn) fn() end)
  end)

  it("under cqueues (tls.over: the probe of the idle conn keeps what it read)", function()
    request_after_ping(function() require("cqueues").sleep(0.02) end, function(fn)
      assert.same({}, cq_run(60, fn))
    end)
  end)
end)

describe("tls.https over HTTP/2: a request given up under cqueues (frame server)", function()
  local cq_run = require("support.cq").run
  local cqueues = require "cqueues"
  setup(function() pki.setup() end)
  teardown(function() https.pool_clear() end)
  before_each(function() https.pool_clear() end)

  it("its sink is not called once it returned timeout", function()
    with_scenario("cancel-window", function(base)
      local got, calls = {}, 0
      assert.same({}, cq_run(60, function()
        -- drives the connection, uploading; the end of its body waits
        -- until the other request gave up (the server answers that one
        -- right after)
        got.x = assert(https.fetch(opts { url = base .. "/x", method = "PUT", source = function()
          calls = calls + 1
          if calls == 1 then return ("a"):rep(65535) end
          if calls == 2 then return "b" end
          while not got.y_err do cqueues.sleep(0) end
        end })).body
      end, function()
        -- joins the connection the other coroutine opened and drives
        while https.pool_stats().h2_connections == 0 do cqueues.sleep(0) end
        local res, err = https.fetch(opts { url = base .. "/y", total_timeout = 0.5, sink = function()
          error("the sink of a request that returned timeout was called")
        end })
        got.y_err = res and "a response" or err
      end))
      assert.equal("timeout", got.y_err)
      assert.equal("first", got.x)
    end)
  end)

  it("a connection left with only given-up requests on it closes once it leaves the pool", function()
    local mark = os.tmpname()
    os.remove(mark)
    -- (with the collector stopped: the library closes it, not a __gc)
    collectgarbage("stop")
    local ok, err = pcall(with_scenario, "goaway-orphan:" .. mark, function(base)
      local got = {}
      assert.same({}, cq_run(60, function()
        -- drives; the end of its answer waits until the other gave up
        assert(https.fetch(opts { url = base .. "/x", sink = function(chunk)
          while chunk and not got.y_err do cqueues.sleep(0) end
          return 1
        end }))
      end, function()
        while https.pool_stats().h2_connections == 0 do cqueues.sleep(0) end
        local res, yerr = https.fetch(opts { url = base .. "/y", total_timeout = 0.5 })
        got.y_err = res and "a response" or yerr
      end))
      assert.equal("timeout", got.y_err)
      assert.equal(0, https.pool_stats().h2_connections)
      -- the server sees the close (a bound, not a timing assertion)
      local deadline = os.time() + 20
      while not io.open(mark, "rb") and os.time() < deadline do os.execute("sleep 0.05") end
      assert.is_truthy(io.open(mark, "rb"), "the connection was left open")
    end)
    collectgarbage("restart")
    os.remove(mark)
    if not ok then error(err, 0) end
  end)
end)
