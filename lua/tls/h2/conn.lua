-- An HTTP/2 client connection (RFC 9113) over a tls.conn that negotiated
-- "h2": it sends requests as streams, many at once up to the server's
-- limit, and reads the frames back, delivering each response to its own
-- callbacks. It is driven by the caller (no threads): session:run(list)
-- sends the requests and reads frames until each has its answer.
--
-- Against a hostile server: frames are bounded (our MAX_FRAME_SIZE), header
-- blocks and decoded header lists are bounded (max_header_size), the HPACK
-- table is bounded (4096), and a run of frames that make no progress
-- (pings, settings, empty frames, resets, priority...) is cut off. Any
-- protocol violation ends the connection with GOAWAY and a clear error.
--
-- A request is a table:
--   { headers = { {name, value [, never_index]}, ... } (pseudo-headers first),
--     body = string | nil, source = function | nil (ltn12 style),
--     on_head(res) -> state | nil, err  (state as tls.https.response.deliver takes)
--   }
-- and after run() it has .res (the response, with .trailers) or .err, and
-- .retry = true when the server did not process it (REFUSED_STREAM, or above
-- a GOAWAY's last stream id): safe to send again on a new connection.

local frame = require "tls.h2.frame"
local hpack = require "tls.h2.hpack"
local response = require "tls.https.response"
local headers_mod = require "tls.https.headers"
local compat = require "tls.compat"

local F = frame
local has, u31, u32, pack32 = frame.has, frame.u31, frame.u32, frame.pack32
local encode = frame.encode

local h2 = {}

h2.WINDOW = 16 * 1024 * 1024     -- our stream and connection receive windows
h2.MAX_FRAME_SIZE = 16384        -- what we accept (the protocol's default)
h2.TABLE_SIZE = 4096             -- our HPACK decoder's table
h2.MAX_IDLE_FRAMES = 10000       -- frames in a row without progress
h2.MAX_IDLE_BYTES = 4 * 1024 * 1024  -- and bytes of them (DATA aside)
h2.MAX_CONCURRENT = 100          -- our own bound on streams at once

local MAX_WINDOW = 2147483647
local DEFAULT_WINDOW = 65535
local CHUNK = 65536

local S = {}
S.__index = S

local function is_wait(err)
  return err == "wantread" or err == "wantwrite" or err == "timeout"
end

-- h2.new(conn, opts) -> session: sends the preface and our settings.
-- opts: max_header_size, timeout (per read/write), now, window
function h2.new(conn, opts)
  local window = opts.window or h2.WINDOW
  local s = setmetatable({
    conn = conn, now = opts.now, timeout = opts.timeout,
    max_header_size = opts.max_header_size or 65536,
    decoder = hpack.decoder(h2.TABLE_SIZE, opts.max_header_size or 65536),
    encoder = hpack.encoder(),
    buf = "", pos = 1,
    streams = {}, active = 0, next_id = 1,
    queue = {}, qi = 1,   -- requests waiting for a stream
    senders = {},         -- streams with request body left to send
    -- the peer's settings (protocol defaults until its SETTINGS arrives)
    peer_window = DEFAULT_WINDOW, peer_max_frame = 16384, peer_max_streams = h2.MAX_CONCURRENT,
    send_window = DEFAULT_WINDOW,          -- connection-level, for our DATA
    recv_window = window, window = window, -- connection-level, for theirs
    consumed = 0,
    idle_frames = 0, idle_bytes = 0,
  }, S)
  local settings = frame.settings {
    { F.ENABLE_PUSH, 0 },
    { F.MAX_CONCURRENT_STREAMS, 0 },
    { F.INITIAL_WINDOW_SIZE, window },
    { F.MAX_FRAME_SIZE, h2.MAX_FRAME_SIZE },
    { F.MAX_HEADER_LIST_SIZE, s.max_header_size },
  }
  local out = F.PREFACE .. encode(F.SETTINGS, 0, 0, settings)
  if window > DEFAULT_WINDOW then
    out = out .. encode(F.WINDOW_UPDATE, 0, 0, pack32(window - DEFAULT_WINDOW))
  end
  s.pending_out = out   -- sent with the first request
  return s
end

--- I/O

-- The time limit for the next wait, or nil once the deadline passed.
function S:wait_time()
  local t = self.timeout
  if self.deadline then
    local left = self.deadline - self.now()
    if left <= 0 then return nil end
    if not t or left < t then t = left end
  end
  return t or -1
end

function S:write(data)
  if self.batch then
    -- (opening several streams: their HEADERS leave in one send)
    self.batch[#self.batch + 1] = data
    return true
  end
  if self.pending_out then
    data = self.pending_out .. data
    self.pending_out = nil
  end
  local conn, i, n = self.conn, 1, #data
  if not conn then return nil, self.dead end
  while i <= n do
    local t = self:wait_time()
    if not t then return nil, "timeout" end
    conn:settimeout(t)
    local last, err = conn:send(data, i, math.min(n, i + CHUNK - 1))
    if not last then return nil, err end
    i = last + 1
  end
  return true
end

local function append(self, data)
  if self.pos > #self.buf then self.buf = data
  else self.buf = self.buf:sub(self.pos) .. data end
  self.pos = 1
end

-- More bytes into the buffer. block = false: only what has arrived.
-- -> true | nil, err ("wantread" when not blocking and nothing is there)
function S:fill(block)
  local conn = self.conn
  if not conn then return nil, self.dead end
  -- a tls.over conn's receive at timeout 0 returns only what it already
  -- holds, never reading: its probe reads what arrived (or the close)
  if not block and conn.probe then conn:probe() end
  conn:settimeout(0)
  local data, err, part = conn:receive(CHUNK)
  if data then append(self, data); return true end
  if part and part ~= "" then append(self, part); return true end
  if not is_wait(err) then return nil, err end
  if not block then return nil, "wantread" end
  local t = self:wait_time()
  if not t then return nil, "timeout" end
  conn:settimeout(t)
  data, err = conn:receive(1)
  if data then append(self, data); return true end
  return nil, err
end

function S:buffered()
  return #self.buf - self.pos + 1
end

-- The next frame: type, flags, stream id, payload | nil, err
-- block = false: nil, "wantread" when no whole frame has arrived.
function S:read_frame(block)
  while self:buffered() < 9 do
    local ok, err = self:fill(block)
    if not ok then return nil, err end
  end
  local len, ftype, flags, sid = frame.header(self.buf, self.pos)
  if not self.preface_seen then
    -- the server's connection preface is a SETTINGS frame (RFC 9113, 3.4):
    -- anything else is not HTTP/2, whatever ALPN said
    if ftype ~= F.SETTINGS or has(flags, F.ACK) then
      local text = self.buf:sub(self.pos, self.pos + 8)
      return nil, self:fail("PROTOCOL_ERROR", text:find("^HTTP/1") and
        "the server answered in HTTP/1 although it agreed to h2 in ALPN" or
        ("the server began with %s, not with SETTINGS"):format(response.quote(text)))
    end
    self.preface_seen = true
  end
  if len > h2.MAX_FRAME_SIZE then
    return nil, self:fail("FRAME_SIZE_ERROR",
      ("a %s frame of %d bytes, over our SETTINGS_MAX_FRAME_SIZE of %d"):format(
        F.TYPE_NAMES[ftype] or "frame", len, h2.MAX_FRAME_SIZE))
  end
  while self:buffered() < 9 + len do
    local ok, err = self:fill(block)
    if not ok then return nil, err end
  end
  local payload = self.buf:sub(self.pos + 9, self.pos + 8 + len)
  self.pos = self.pos + 9 + len
  if self.pos > #self.buf then self.buf, self.pos = "", 1 end
  return ftype, flags, sid, payload
end

--- Errors

-- A connection error: GOAWAY to the peer, then the connection is dead and
-- every stream on it fails with the message. -> the message
function S:fail(code, why)
  if self.dead then return self.dead end
  local msg = ("http2: %s (%s)"):format(why, code)
  self.dead = msg
  if self.conn then
    local conn = self.conn
    -- one attempt, never a wait
    conn:settimeout(0)
    compat.pcall(conn.send, conn, encode(F.GOAWAY, 0, 0, pack32(0) .. pack32(F.CODES[code] or 1) .. why:sub(1, 200)))
    self:close()
  end
  for _, st in pairs(self.streams) do
    if not st.done then self:finish(st, msg) end
  end
  return msg
end

-- The connection ended or failed under us (no GOAWAY possible).
function S:lost(err)
  if self.dead then return self.dead end
  local msg = err
  if response.ended(err) then
    msg = "truncated response: the server closed the HTTP/2 connection"
    if self.goaway then msg = msg .. " after GOAWAY" end
  end
  self.dead = msg
  for _, st in pairs(self.streams) do
    -- no answer at all: on a reused connection the caller may send it again
    st.unanswered = not st.res and response.ended(err)
  end
  self:close()   -- (fails every open stream with msg)
  return msg
end

-- No stream outlives the connection: those still open fail with the
-- reason the session died for.
function S:close()
  local conn = self.conn
  if conn then
    self.conn = nil
    conn:settimeout(0)
    conn:close()
  end
  self.dead = self.dead or "http2: the connection was closed while the request was in progress"
  for _, st in pairs(self.streams) do self:finish(st, self.dead) end
end

function S:usable()
  return not self.dead and not self.goaway and self.conn ~= nil
    and self.next_id < 2147483647
end

-- Ends a stream with an error (or none: done)
function S:finish(st, err, retry)
  if st.done then return end
  st.done = true
  -- callers waiting on the session check whether this was theirs
  if self.cond then self.cond:signal() end
  st.err = err
  st.retry = retry
  if self.streams[st.id] == st then
    self.streams[st.id] = nil
    self.active = self.active - 1
  end
end

-- A stream error: RST_STREAM to the peer, the stream fails with msg.
function S:reset(st, code, msg)
  if not st.done then
    self:finish(st, msg)
    local ok, err = self:write(encode(F.RST_STREAM, 0, st.id, pack32(F.CODES[code] or 8)))
    if not ok then self:lost(err) end
  end
end

--- Sending requests

function S:open_stream(req)
  local id = self.next_id
  self.next_id = id + 2
  local st = { id = id, req = req, send_window = self.peer_window,
    recv_window = self.window, consumed = 0, received = 0 }
  req.stream = st
  self.streams[id] = st
  self.active = self.active + 1
  local block = self.encoder:encode(req.headers)
  local body, source = req.body, req.source
  if body == "" then body = nil end
  local flags = (body or source) and 0 or F.END_STREAM
  local max = self.peer_max_frame
  local out = {}
  if #block <= max then
    out[1] = encode(F.HEADERS, flags + F.END_HEADERS, id, block)
  else
    out[1] = encode(F.HEADERS, flags, id, block:sub(1, max))
    local i = max + 1
    while i <= #block do
      local j = math.min(#block, i + max - 1)
      out[#out + 1] = encode(F.CONTINUATION, j == #block and F.END_HEADERS or 0, id, block:sub(i, j))
      i = j + 1
    end
  end
  st.body, st.body_pos, st.source = body, 1, source
  st.sending = (body or source) and true or false
  if st.sending then self.senders[st] = true end
  local ok, err = self:write(table.concat(out))
  if not ok then self:lost(err); return end
end

-- Send what the windows allow of one stream's body. -> sent something
function S:send_body(st)
  local progress = false
  while st.sending and not st.done do
    if not st.body or st.body_pos > #st.body then
      -- the next piece from the source (or the end)
      if not st.source then
        st.sending = false
        local ok, err = self:write(encode(F.DATA, F.END_STREAM, st.id, ""))
        if not ok then self:lost(err) end
        return true
      end
      local chunk, serr = st.source()
      if chunk == nil then
        if serr ~= nil then
          self:reset(st, "CANCEL", "source: " .. tostring(serr))
          return true
        end
        if st.req.length and st.sent ~= st.req.length then
          self:reset(st, "CANCEL", ("source: produced %d bytes but Content-Length is %d")
            :format(st.sent or 0, st.req.length))
          return true
        end
        st.source = nil
        st.body = nil
      elseif type(chunk) ~= "string" then
        self:reset(st, "CANCEL", "source: produced a " .. type(chunk) .. " instead of a string")
        return true
      else
        st.sent = (st.sent or 0) + #chunk
        if st.req.length and st.sent > st.req.length then
          self:reset(st, "CANCEL", ("source: produced more than the Content-Length of %d bytes")
            :format(st.req.length))
          return true
        end
        st.body, st.body_pos = chunk, 1
      end
    else
      local n = math.min(#st.body - st.body_pos + 1, st.send_window, self.send_window,
        self.peer_max_frame)
      if n <= 0 then return progress end
      local last = not st.source and st.body_pos + n > #st.body
      local data = st.body:sub(st.body_pos, st.body_pos + n - 1)
      st.body_pos = st.body_pos + n
      st.send_window = st.send_window - n
      self.send_window = self.send_window - n
      if last then st.sending = false end
      local ok, err = self:write(encode(F.DATA, last and F.END_STREAM or 0, st.id, data))
      if not ok then self:lost(err); return true end
      progress = true
      self:progress()
    end
  end
  return progress
end

--- Receiving

-- Resets the streams of requests their callers gave up on (a waiter past
-- its deadline): no callback of theirs runs after they returned.
function S:reset_cancelled()
  if self.cancelled then
    self.cancelled = false
    for _, st in pairs(self.streams) do
      if st.req.cancel then self:reset(st, "CANCEL", st.req.cancel) end
    end
  end
end

-- The open stream sid, unless its caller gave up on it
function S:live(sid)
  local st = self.streams[sid]
  if st and st.req.cancel then
    self:reset(st, "CANCEL", st.req.cancel)
    return nil
  end
  return st
end

-- A frame moved a response on: the flood bounds start again.
function S:progress()
  self.idle_frames, self.idle_bytes = 0, 0
end

local connection_specific = { connection = true, ["keep-alive"] = true,
  ["proxy-connection"] = true, ["transfer-encoding"] = true, upgrade = true }

-- A decoded response header block -> fields, status | nil, why (malformed)
local function response_fields(list, trailers)
  local fields, status = {}, nil
  for i, f in ipairs(list) do
    local name, value = f[1], f[2]
    if name:sub(1, 1) == ":" then
      if trailers then return nil, "a pseudo-header in trailers" end
      if name ~= ":status" then return nil, "the pseudo-header " .. name .. " in a response" end
      if status or #fields > 0 then return nil, "a misplaced or repeated :status" end
      status = value
    else
      if name:find("[A-Z]") then return nil, "an upper-case header name " .. response.quote(name) end
      if name == "" or name:find("[%z\1-\32\127:]") then
        return nil, "a malformed header name " .. response.quote(name)
      end
      if value:find("[%z\r\n]") then return nil, "a header value with CR, LF or NUL" end
      if connection_specific[name] then
        return nil, "the connection-specific header " .. name
      end
      fields[#fields + 1] = { name, value }
    end
  end
  if not trailers then
    -- 100 to 599 (RFC 9110, 15): "099" must not pass for an interim answer
    if not status or not status:match("^[1-5]%d%d$") then
      return nil, "no valid :status (got " .. response.quote(tostring(status)) .. ")"
    end
    status = tonumber(status)
  end
  return fields, status
end

function S:on_headers(sid, flags, block)
  -- decoded first, always: the HPACK table must follow every block
  local list, why, too_big = self.decoder:decode(block)
  if not list then
    if too_big then
      -- the table stayed in step up to here; still, the connection cannot go on
      return self:fail("PROTOCOL_ERROR", "response headers too large: " .. why
        .. " (option max_header_size)")
    end
    return self:fail("COMPRESSION_ERROR", "a bad header block: " .. why)
  end
  local st = self:live(sid)
  if not st then
    if sid % 2 == 0 or sid >= self.next_id then
      return self:fail("PROTOCOL_ERROR", ("HEADERS on stream %d, which we never opened"):format(sid))
    end
    return   -- a stream we reset: ignored
  end
  local end_stream = has(flags, F.END_STREAM)
  if st.res then
    -- trailers
    local fields, err = response_fields(list, true)
    if not fields then return self:reset(st, "PROTOCOL_ERROR", "http2: malformed trailers: " .. err) end
    if not end_stream then
      return self:reset(st, "PROTOCOL_ERROR", "http2: a second header block without END_STREAM")
    end
    st.res.trailers = headers_mod.new(fields)
    return self:complete(st)
  end
  local fields, status = response_fields(list, false)
  if not fields then return self:reset(st, "PROTOCOL_ERROR", "http2: malformed response: " .. status) end
  if status < 200 then
    if status == 101 then return self:reset(st, "PROTOCOL_ERROR", "http2: malformed response: 101") end
    if end_stream then return self:reset(st, "PROTOCOL_ERROR", "http2: a 1xx response ended the stream") end
    return   -- interim
  end
  self:progress()
  local res = { status = status, code = status, reason = "", version = "2",
    status_line = "HTTP/2 " .. status, headers = headers_mod.new(fields) }
  st.res = res
  local cl = res.headers["content-length"]
  if cl then
    -- at most 15 digits (as HTTP/1.1's reader): exact in a double, an integer on 5.3+
    local digits = cl:match("^%d+$")
    st.length = digits and #digits <= 15 and compat.tointeger(tonumber(digits)) or nil
    if not st.length then
      return self:reset(st, "PROTOCOL_ERROR", "http2: malformed response: bad content-length "
        .. response.quote(cl))
    end
  end
  local state, err = st.req.on_head(res)
  if not state then return self:reset(st, "CANCEL", err) end
  st.state = state
  state.total = st.length
  if state.max_body and st.length and st.length > state.max_body and st.req.method ~= "HEAD" then
    return self:reset(st, "CANCEL", response.body_too_big(state)
      .. (": the server announced %d"):format(st.length))
  end
  if end_stream then return self:complete(st) end
end

function S:complete(st)
  if st.length and st.received ~= st.length and st.req.method ~= "HEAD"
      and st.res.status ~= 204 and st.res.status ~= 304 then
    return self:reset(st, "PROTOCOL_ERROR", ("http2: malformed response: %d body bytes for a "
      .. "content-length of %d"):format(st.received, st.length))
  end
  local ok, err = response.deliver(st.state, nil)
  if not ok then return self:finish(st, err) end
  self:progress()
  self:finish(st)
end

-- Give back receive window as the data is consumed (delivered to its sink).
function S:consume(st, n)
  self.consumed = self.consumed + n
  local out = ""
  if self.consumed >= self.window / 2 then
    out = encode(F.WINDOW_UPDATE, 0, 0, pack32(self.consumed))
    self.recv_window = self.recv_window + self.consumed
    self.consumed = 0
  end
  if st and not st.done then
    st.consumed = st.consumed + n
    if st.consumed >= self.window / 2 then
      out = out .. encode(F.WINDOW_UPDATE, 0, st.id, pack32(st.consumed))
      st.recv_window = st.recv_window + st.consumed
      st.consumed = 0
    end
  end
  if out ~= "" then
    local ok, err = self:write(out)
    if not ok then self:lost(err) end
  end
end

function S:on_data(sid, flags, payload)
  local n = #payload
  self.recv_window = self.recv_window - n
  if self.recv_window < 0 then
    return self:fail("FLOW_CONTROL_ERROR", "the server sent past the connection window")
  end
  local st = self:live(sid)
  if not st then
    if sid >= self.next_id or sid % 2 == 0 then
      return self:fail("PROTOCOL_ERROR", ("DATA on stream %d, which we never opened"):format(sid))
    end
    -- a stream we reset or finished: its bytes still count for the connection
    return self:consume(nil, n)
  end
  if not st.res then
    return self:reset(st, "PROTOCOL_ERROR", "http2: DATA before the response headers")
  end
  st.recv_window = st.recv_window - n
  if st.recv_window < 0 then
    return self:reset(st, "FLOW_CONTROL_ERROR", "http2: the server sent past the stream window")
  end
  local data = payload
  if has(flags, F.PADDED) then
    local pad = payload:byte(1)
    if not pad or pad >= n then
      return self:fail("PROTOCOL_ERROR", "DATA padding longer than the frame")
    end
    data = payload:sub(2, n - pad)
  end
  if #data > 0 then
    -- (as HTTP/1.1 reads none there: these bytes would reach the sink)
    if st.req.method == "HEAD" or st.res.status == 204 or st.res.status == 304 then
      return self:reset(st, "PROTOCOL_ERROR", "http2: malformed response: a body in "
        .. (st.req.method == "HEAD" and "the answer to HEAD" or ("a " .. st.res.status .. " response")))
    end
    self:progress()
    st.received = st.received + #data
    if st.length and st.received > st.length then
      return self:reset(st, "PROTOCOL_ERROR", ("http2: malformed response: more body bytes than "
        .. "its content-length of %d"):format(st.length))
    end
    local ok, err = response.deliver(st.state, data)
    if not ok then
      self:consume(nil, n)
      return self:reset(st, "CANCEL", err)
    end
  end
  if has(flags, F.END_STREAM) then
    self:consume(nil, n)
    return self:complete(st)
  end
  self:consume(st, n)
end

function S:on_settings(flags, payload)
  if has(flags, F.ACK) then
    if #payload ~= 0 then return self:fail("FRAME_SIZE_ERROR", "a SETTINGS ack with a payload") end
    return
  end
  if #payload % 6 ~= 0 then
    return self:fail("FRAME_SIZE_ERROR", "a SETTINGS payload of " .. #payload .. " bytes")
  end
  local window, highest   -- this frame's last and highest INITIAL_WINDOW_SIZE
  for i = 1, #payload, 6 do
    local id = payload:byte(i) * 256 + payload:byte(i + 1)
    local v = u32(payload, i + 2)
    if id == F.HEADER_TABLE_SIZE then
      self.encoder:set_max_table_size(v)
    elseif id == F.ENABLE_PUSH then
      if v ~= 0 then return self:fail("PROTOCOL_ERROR", "a server set SETTINGS_ENABLE_PUSH to " .. v) end
    elseif id == F.MAX_CONCURRENT_STREAMS then
      self.peer_max_streams = v
    elseif id == F.INITIAL_WINDOW_SIZE then
      if v > MAX_WINDOW then
        return self:fail("FLOW_CONTROL_ERROR", "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1")
      end
      window, highest = v, math.max(highest or v, v)
    elseif id == F.MAX_FRAME_SIZE then
      if v < 16384 or v > 16777215 then
        return self:fail("PROTOCOL_ERROR", "SETTINGS_MAX_FRAME_SIZE of " .. v)
      end
      self.peer_max_frame = v
    end
    -- MAX_HEADER_LIST_SIZE is advisory; unknown settings are ignored
  end
  if window then
    -- the streams' windows move once per frame, not once per entry (a
    -- frame holds up to 2730 entries, each touching up to 100 streams);
    -- had a window gone over 2^31-1, it did at the highest value
    local delta, peak = window - self.peer_window, highest - self.peer_window
    self.peer_window = window
    for _, st in pairs(self.streams) do
      if st.send_window + peak > MAX_WINDOW then
        return self:fail("FLOW_CONTROL_ERROR", "a stream window over 2^31-1")
      end
      st.send_window = st.send_window + delta
    end
  end
  local ok, err = self:write(encode(F.SETTINGS, F.ACK, 0, ""))
  if not ok then return self:lost(err) end
end

function S:on_goaway(payload)
  if #payload < 8 then return self:fail("FRAME_SIZE_ERROR", "a GOAWAY of " .. #payload .. " bytes") end
  local last, code = u31(payload, 1), u32(payload, 5)
  self.goaway = { last = last, code = code, debug = payload:sub(9, 200) }
  for id, st in pairs(self.streams) do
    if id > last then
      -- safe to send again only if nothing of its answer reached the caller
      -- (a server that answered part of it and then denies it is not believed)
      self:finish(st, ("http2: the server is going away (GOAWAY %s) and did not process the request%s")
        :format(frame.error_name(code), st.res and ", after sending part of its response" or ""),
        not st.res)
    end
  end
end

function S:on_frame(ftype, flags, sid, payload)
  if self.continuing then
    if ftype ~= F.CONTINUATION or sid ~= self.continuing then
      return self:fail("PROTOCOL_ERROR", "a header block was interrupted by a "
        .. (F.TYPE_NAMES[ftype] or "unknown") .. " frame")
    end
  end
  if ftype == F.DATA then
    if sid == 0 then return self:fail("PROTOCOL_ERROR", "DATA on stream 0") end
    -- progress only when bytes reach a response (on_data): DATA on a
    -- closed stream answers nothing
    self:on_data(sid, flags, payload)
  elseif ftype == F.HEADERS then
    if sid == 0 then return self:fail("PROTOCOL_ERROR", "HEADERS on stream 0") end
    local block = payload
    local pos, stop = 1, #payload
    if has(flags, F.PADDED) then
      local pad = payload:byte(1)
      if not pad or pad >= #payload then return self:fail("PROTOCOL_ERROR", "HEADERS padding longer than the frame") end
      pos, stop = 2, #payload - pad
    end
    if has(flags, F.PRIORITY_FLAG) then pos = pos + 5 end
    if pos > stop + 1 then return self:fail("FRAME_SIZE_ERROR", "a HEADERS frame too short for its flags") end
    block = payload:sub(pos, stop)
    if has(flags, F.END_HEADERS) then
      self:on_headers(sid, flags, block)
    else
      self.continuing, self.block, self.block_flags = sid, { block }, flags
      self.block_size = #block
    end
  elseif ftype == F.CONTINUATION then
    if not self.continuing then return self:fail("PROTOCOL_ERROR", "a CONTINUATION without HEADERS") end
    self.block_size = self.block_size + #payload
    if self.block_size > self.max_header_size then
      return self:fail("PROTOCOL_ERROR", ("a header block over %d bytes (option max_header_size)")
        :format(self.max_header_size))
    end
    self.block[#self.block + 1] = payload
    if has(flags, F.END_HEADERS) then
      local block, bflags = table.concat(self.block), self.block_flags
      self.continuing, self.block = nil, nil
      self:on_headers(sid, bflags, block)
    end
  elseif ftype == F.SETTINGS then
    if sid ~= 0 then return self:fail("PROTOCOL_ERROR", "SETTINGS on a stream") end
    self:on_settings(flags, payload)
  elseif ftype == F.PING then
    if sid ~= 0 then return self:fail("PROTOCOL_ERROR", "PING on a stream") end
    if #payload ~= 8 then return self:fail("FRAME_SIZE_ERROR", "a PING of " .. #payload .. " bytes") end
    if not has(flags, F.ACK) then
      local ok, err = self:write(encode(F.PING, F.ACK, 0, payload))
      if not ok then return self:lost(err) end
    end
  elseif ftype == F.GOAWAY then
    if sid ~= 0 then return self:fail("PROTOCOL_ERROR", "GOAWAY on a stream") end
    self:on_goaway(payload)
  elseif ftype == F.RST_STREAM then
    if sid == 0 then return self:fail("PROTOCOL_ERROR", "RST_STREAM on stream 0") end
    if #payload ~= 4 then return self:fail("FRAME_SIZE_ERROR", "an RST_STREAM of " .. #payload .. " bytes") end
    if sid % 2 == 0 or sid >= self.next_id then
      return self:fail("PROTOCOL_ERROR", ("RST_STREAM on stream %d, which we never opened"):format(sid))
    end
    local st = self.streams[sid]
    if st then
      local code = u32(payload, 1)
      -- (REFUSED_STREAM: not processed, safe to send again, unless part of
      -- the answer already reached the caller's sink)
      self:finish(st, ("http2: the server reset the stream (%s)"):format(frame.error_name(code)),
        code == F.CODES.REFUSED_STREAM and not st.res or nil)
    end
  elseif ftype == F.WINDOW_UPDATE then
    if #payload ~= 4 then return self:fail("FRAME_SIZE_ERROR", "a WINDOW_UPDATE of " .. #payload .. " bytes") end
    local inc = u31(payload, 1)
    if sid == 0 then
      if inc == 0 then return self:fail("PROTOCOL_ERROR", "a WINDOW_UPDATE of 0") end
      self.send_window = self.send_window + inc
      if self.send_window > MAX_WINDOW then
        return self:fail("FLOW_CONTROL_ERROR", "the connection window went over 2^31-1")
      end
    else
      local st = self.streams[sid]
      if st then
        if inc == 0 then return self:reset(st, "PROTOCOL_ERROR", "http2: a WINDOW_UPDATE of 0") end
        st.send_window = st.send_window + inc
        if st.send_window > MAX_WINDOW then
          return self:reset(st, "FLOW_CONTROL_ERROR", "http2: a stream window went over 2^31-1")
        end
      end
    end
  elseif ftype == F.PUSH_PROMISE then
    return self:fail("PROTOCOL_ERROR", "a PUSH_PROMISE although we set SETTINGS_ENABLE_PUSH to 0")
  elseif ftype == F.PRIORITY then
    if #payload ~= 5 then return self:fail("FRAME_SIZE_ERROR", "a PRIORITY of " .. #payload .. " bytes") end
  end
  -- unknown frame types are ignored (RFC 9113, 4.1)
  -- (a frame that made progress set the counts to 0.) Bytes count too:
  -- header blocks (HPACK-decoded even on closed streams) and SETTINGS
  -- entries cost work per byte, and 10000 full frames are 160 MB of it.
  -- DATA on closed streams is cheap to drop and may be in flight after a
  -- reset up to our window, so only its frames count.
  self.idle_frames = self.idle_frames + 1
  if ftype ~= F.DATA then self.idle_bytes = self.idle_bytes + #payload end
  if self.idle_frames > h2.MAX_IDLE_FRAMES then
    return self:fail("ENHANCE_YOUR_CALM", ("the server sent %d frames in a row without any "
      .. "response data (a flood?)"):format(self.idle_frames))
  end
  if self.idle_bytes > h2.MAX_IDLE_BYTES then
    return self:fail("ENHANCE_YOUR_CALM", ("the server sent over %d bytes of frames in a row "
      .. "without any response data (a flood?)"):format(h2.MAX_IDLE_BYTES))
  end
end

-- Handle every frame that has already arrived, without waiting: what an
-- idle pooled connection received (SETTINGS, PING, GOAWAY, a close).
function S:poll()
  self:reset_cancelled()
  while not self.dead do
    local ftype, flags, sid, payload = self:read_frame(false)
    if not ftype then
      if flags ~= "wantread" then self:lost(flags) end
      return
    end
    self:on_frame(ftype, flags, sid, payload)
  end
end

--- Running requests

-- A request is done when its stream finished, or it failed before one opened.
local function done(req)
  return req.failed or (req.stream ~= nil and req.stream.done)
end

-- Requests waiting for a stream fail (retry: they were never sent).
function S:fail_queued(err, retry)
  local q = self.queue
  for i = self.qi, #q do
    local req = q[i]
    if not done(req) then req.failed, req.err, req.retry = true, err, retry end
  end
  if self.cond then self.cond:signal() end
  self.queue, self.qi = {}, 1
end

-- One round of the driver: cancel what callers gave up on, open streams
-- while the limits allow, send bodies as far as the windows allow, then
-- read and handle one frame.
function S:step()
  self:reset_cancelled()
  local q = self.queue
  if self.qi <= #q then
    self.batch = {}
    while self.qi <= #q and not self.dead and not self.goaway
        and self.active < math.min(self.peer_max_streams, h2.MAX_CONCURRENT)
        and self.next_id < 2147483647 do
      local req = q[self.qi]
      self.qi = self.qi + 1
      if not req.cancel then self:open_stream(req) end
    end
    local out = table.concat(self.batch)
    self.batch = nil
    if out ~= "" and not self.dead then
      local ok, err = self:write(out)
      if not ok then self:lost(err) end
    end
  end
  if self.qi > #q and #q > 0 then self.queue, self.qi = {}, 1 end
  if next(self.senders) then
    for st in pairs(self.senders) do
      if st.sending and not st.done then self:send_body(st) else self.senders[st] = nil end
    end
  end
  if self.active == 0 then
    if self.qi > #q then return end
    if self.dead or self.goaway or self.next_id >= 2147483647 then
      -- not sent: the caller may send them on a new connection
      return self:fail_queued(self.dead or "http2: the server is going away (GOAWAY)", true)
    end
    if self.peer_max_streams == 0 then
      return self:fail_queued("http2: the server allows no streams (SETTINGS_MAX_CONCURRENT_STREAMS 0)")
    end
    return
  end
  local ftype, flags, sid, payload = self:read_frame(true)
  if not ftype then
    if flags == "timeout" then
      -- the state of every stream is unknown now: the connection ends
      self.dead = "timeout"
      self:close()
      for _, st in pairs(self.streams) do self:finish(st, "timeout") end
    else
      self:lost(flags)
    end
  else
    self:on_frame(ftype, flags, sid, payload)
  end
end

-- Ends the session at once, failing every request on it and waking the
-- callers waiting on it (after a callback raised an error).
function S:abort(why)
  self.dead = self.dead or why
  self:close()
  for _, st in pairs(self.streams) do self:finish(st, why) end
  self:fail_queued(why)
  self.driver = nil
  if self.cond then self.cond:signal() end
end

-- session:run(requests, deadline): sends each request and reads until
-- each has .res or .err. Requests beyond the concurrency limits wait for a
-- free stream; after GOAWAY or a dead connection they get .err (.retry set
-- when they were not sent).
--
-- With session.cond (a cqueues condition: the session is used by several
-- coroutines), run may be called from several coroutines at once: one of
-- them, the driver, reads and writes the connection for everyone and
-- signals after each frame; the others wait, and one of them takes over
-- when the driver's own requests are done. A waiter past its deadline
-- gives up its requests ("timeout"; the driver resets their streams).
function S:run(requests, deadline)
  local q = self.queue
  for i = 1, #requests do q[#q + 1] = requests[i] end
  local me = coroutine.running() or "main"
  local first = 1   -- requests before it are done (done is for good)
  while true do
    while first <= #requests and done(requests[first]) do first = first + 1 end
    if first > #requests then break end
    if self.driver and self.driver ~= me and self.cond then
      local left = deadline and (deadline - self.now())
      if left and left <= 0 then
        for i = 1, #requests do
          local req = requests[i]
          if not done(req) then
            req.cancel = "timeout"
            req.failed, req.err = true, "timeout"
            self.cancelled = true
          end
        end
      else
        self.cond:wait(left or self.timeout)
      end
    else
      self.driver = me
      self.deadline = deadline
      self:step()
    end
  end
  if self.driver == me then
    self.driver = nil
    self.deadline = nil
    if self.cond then self.cond:signal() end
  end
  for _, req in ipairs(requests) do
    local st = req.stream
    if st and not req.failed then
      req.err, req.retry, req.unanswered = st.err, st.retry, st.unanswered
      if not st.err then req.res = st.res end
    end
  end
end

return h2
