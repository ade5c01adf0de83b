-- tls.over: a TLS conn over any host's socket. The in-memory engine
-- (tls.engine) does the TLS; this file pumps its ciphertext through a
-- transport the host provides, a table (or object) with methods
--
--   t:read(max)      -> 1..max bytes as soon as any arrive, or nil, err
--                       (err "closed" at end of stream, "timeout", or a message)
--   t:write(data)    -> true once all of data is sent, or nil, err
--   t:close()
--   t:settimeout(s)  (optional) the bound, in seconds, of the next read/write;
--                       nil: none
--   t:now()          (optional) a clock in seconds, for per-operation deadlines
--
-- All waiting happens inside the transport's own methods (a cosocket, a
-- cqueues poll, HAProxy's core.tcp()); the C core never waits, yields or
-- calls back into Lua, so nothing yields across a C call.
--
--   local c = assert(tls.over(tls.transport.ngx(sock), {servername = "example.org"}))
--   assert(c:handshake())
--
-- Ready transports: tls.transport.ngx, .haproxy, .cqueues, .socket.

local tls = require "tls"
local compat = require "tls.compat"

local concat = table.concat
local co_running, co_status = coroutine.running, coroutine.status
-- (a pcall the transport's waits can yield through, Lua 5.1 included)
local ypcall = compat.pcall

-- Largest read asked of the transport: a few records per wakeup, always
-- under the engine's input limit (at least one record).
local READ_MAX = 65536

local Conn = {}
Conn.__index = Conn
Conn.__name = "tls.over"

local function check_timeout(t, where)
  if t ~= nil and (type(t) ~= "number" or t ~= t) then
    error(where .. ": timeout must be a number of seconds or nil, got "
      .. (t ~= t and "NaN" or type(t)), 3)
  end
  if t and t < 0 then return nil end
  return t
end

local function method_of(obj, name)
  local ok, f = pcall(function() return obj[name] end)
  if ok and type(f) == "function" then return f end
  return nil
end

--- Deadlines: each operation gets its own, from the transport's clock.

local function deadline_of(self, timeout)
  if timeout == nil or not self._now then return nil end
  return self._now(self.transport) + timeout
end

-- Bound the next transport call by the seconds left (nil: none; without a
-- clock, the whole timeout). Returns false when the deadline has passed.
local function set_bound(self, deadline)
  local left
  if deadline == nil then
    left = self.timeout
  else
    left = deadline - self._now(self.transport)
    if left <= 0 then return false end
  end
  local settimeout = self._settimeout
  if settimeout then settimeout(self.transport, left) end
  return true
end

--- The pump

-- Send what the engine queued. A failed write leaves a partial record on
-- the wire: the conn cannot go on, so later operations report the failure.
local function flush(self, deadline)
  local out = self.engine:drain()
  if out == "" then return true end
  if self._broken then return nil, self._broken end
  if not set_bound(self, deadline) then
    self._broken = "closed"
    return nil, "timeout"
  end
  local ok, err = self.transport:write(out)
  if ok == true then return true end
  if type(ok) == "number" and ok < #out then
    -- a count short of all (a raw send's): the rest would be lost unseen
    self._broken = "closed"
    error(("tls.over: the transport's write returned %d for %d bytes (write(data) must "
      .. "send all of data and return true, or nil, err)"):format(ok, #out), 0)
  end
  if ok then return true end
  err = err or "closed"
  self._broken = "closed"
  return nil, err
end

-- Move ciphertext from the transport into the engine. The engine asks for
-- more only once it has consumed all it was fed, so a read of at most
-- READ_MAX bytes always fits. End of stream goes to the engine, which then
-- reports "closed" or a failed handshake itself.
-- A read that breaks the transport contract raises: an empty string would
-- spin (no progress, no wait), more than max would overflow the engine's
-- input with a misleading "buffer full".
local function bad_read(data, max)
  if type(data) ~= "string" then
    return "returned a " .. type(data) .. " (read(max) must return a string "
      .. "of 1..max bytes, or nil, err)"
  elseif data == "" then
    return "returned an empty string (read(max) must wait until at least one "
      .. "byte arrives, or return nil, err)"
  elseif #data > max then
    return ("returned %d bytes, more than the %d asked for"):format(#data, max)
  end
end

local function fill(self, deadline)
  if self._broken then return nil, self._broken end
  if not set_bound(self, deadline) then return nil, "timeout" end
  local max = self._read_max
  local data, err = self.transport:read(max)
  if data ~= nil then
    local bad = bad_read(data, max)
    if bad then error("tls.over: the transport's read " .. bad, 0) end
    local ok, ferr = self.engine:feed(data)
    if not ok then return nil, ferr end
    return true
  end
  if err == "closed" or err == nil then
    self.engine:feed_eof()
    return true
  end
  return nil, err
end

-- Run step(engine, ...) until it no longer wants I/O; its results.
local function drive(self, deadline, step, ...)
  local e = self.engine
  while true do
    local r1, err, r3 = step(e, ...)
    -- what the engine queued (a flight, an alert) goes out before returning
    local ok, ferr = flush(self, deadline)
    if err ~= "wantread" and err ~= "wantwrite" then
      if r1 and not ok then return nil, ferr, r3 end
      return r1, err, r3
    end
    if not ok then return nil, ferr, r3 end
    if err == "wantread" then
      ok, ferr = fill(self, deadline)
      if not ok then return nil, ferr, r3 end
    end
  end
end

local function handshake_first(self, deadline)
  if self._shaken then return true end
  if self._closed then return nil, "closed" end
  local ok, err = drive(self, deadline, self.engine.handshake)
  if ok then
    self._shaken = true
    return true
  end
  if self._closed then err = "closed" end
  return nil, err
end

--- One coroutine at a time

local function busy(self, what)
  error(("tls.over: %s: this connection is already in use by another "
    .. "coroutine (it is waiting in %s); use one coroutine per connection "
    .. "or serialise access"):format(what, self._busy), 3)
end

local function leave(self, ok, ...)
  self._owner, self._busy = nil, nil
  if not ok then error((...), 0) end
  return ...
end

-- f(self, ...) as the conn's one user. (Every operation passes here, so
-- the check is inline: a bulk send is a few dozen VM instructions.)
local function run(self, what, f, ...)
  local owner, me = self._owner, co_running() or "main"  -- (5.1: nil in the main thread)
  if owner ~= nil and owner ~= me and (type(owner) ~= "thread" or co_status(owner) ~= "dead") then
    busy(self, what)
  end
  self._owner, self._busy = me, what
  return leave(self, ypcall(f, self, ...))
end

--- Operations

local function handshake(self, timeout)
  return handshake_first(self, deadline_of(self, timeout))
end

-- c:handshake([timeout]) -> true | nil, err. Runs the certificate policy.
function Conn:handshake(timeout)
  -- (a negative timeout given here means none, not the conn's)
  if timeout == nil then timeout = self.timeout
  else timeout = check_timeout(timeout, "tls.over: handshake") end
  return run(self, "handshake", handshake, timeout)
end

local patterns = { ["*l"] = "*l", l = "*l", ["*L"] = "*L", L = "*L", ["*a"] = "*a", a = "*a" }

-- The engine bounds the line of one receive call; a line that arrives over
-- many rounds is bounded here, prefix included, with the conn's words.
local function line_too_long(e, pattern, got, has_lf)
  local max = e:getmaxline()
  if got <= max + ((pattern == "*L" and has_lf) and 1 or 0) then return nil end
  return ("receive: line longer than %d bytes (conn:setmaxline raises the limit)"):format(max)
end

-- Pieces are collected in a table and joined once: passing the partial
-- result back as the prefix each round would copy it again every time
-- (quadratic on a large "*a").
local function receive(self, pattern, prefix)
  local deadline = deadline_of(self, self.timeout)
  if not self._shaken then
    local ok, err = handshake_first(self, deadline)
    if not ok then return nil, err, prefix or "" end
  end
  local e = self.engine
  local pieces, n, got = {}, 0, 0
  if prefix and prefix ~= "" then pieces[1], n, got = prefix, 1, #prefix end
  local left
  if type(pattern) == "number" then
    left = pattern - got
    if left <= 0 then return prefix or "" end  -- as a socket conn: the prefix whole
  end
  local line = pattern == "*l" or pattern == "*L"
  local held = self._held
  if held then
    -- the byte a probe read comes first (as the engine would have given it)
    self._held = nil
    if line and held == "\n" then
      pieces[n + 1] = pattern == "*L" and "\n" or ""
      return concat(pieces)
    end
    if not (pattern == "*l" and held == "\r") then  -- ("*l" drops CRs, as the engine)
      n, got = n + 1, got + 1
      pieces[n] = held
      if left then
        left = left - 1
        if left == 0 then return concat(pieces) end
      end
    end
  end
  while true do
    local data, rerr, part
    if left then data, rerr, part = e:receive(left) else data, rerr, part = e:receive(pattern) end
    if data then
      flush(self, deadline)
      if n == 0 then return data end
      pieces[n + 1] = data
      local long = line and line_too_long(e, pattern, got + #data, data:sub(-1) == "\n")
      if long then return nil, long, concat(pieces) end
      return concat(pieces)
    end
    if part and part ~= "" then
      n = n + 1
      pieces[n] = part
      got = got + #part
      if left then left = left - #part end
      local long = line and line_too_long(e, pattern, got, false)
      if long then return nil, long, concat(pieces) end
    end
    local fok, ferr = flush(self, deadline)
    if rerr ~= "wantread" and rerr ~= "wantwrite" then
      return nil, self._closed and "closed" or rerr, concat(pieces)
    end
    if fok and rerr == "wantread" then fok, ferr = fill(self, deadline) end
    if not fok then
      -- a write that failed here (the engine answered the peer mid-read and
      -- the connection was gone) is no close_notify: "closed" would pass a
      -- body read to the close as complete
      if not self._closed and ferr == "closed" then ferr = "truncated" end
      return nil, self._closed and "closed" or ferr, concat(pieces)
    end
  end
end

-- c:receive([pattern [, prefix]]) with LuaSocket's patterns and returns:
-- "*l", "*L", "*a" or a byte count; on failure nil, err, partial.
function Conn:receive(pattern, prefix)
  if pattern == nil then pattern = "*l" end
  if type(pattern) == "number" then
    if pattern < 0 or pattern ~= pattern or pattern ~= math.floor(pattern) then
      error("bad argument #1 to 'receive' (byte count must be a non-negative integer)", 2)
    end
  elseif not patterns[pattern] then
    error("bad argument #1 to 'receive' (invalid receive pattern "
      .. "(use \"*l\", \"*L\", \"*a\" or a byte count))", 2)
  else
    pattern = patterns[pattern]
  end
  if prefix ~= nil and type(prefix) ~= "string" then
    error("bad argument #2 to 'receive' (string expected, got " .. type(prefix) .. ")", 2)
  end
  if self._closed then return nil, "closed" end  -- as a socket conn: no partial
  return run(self, "receive", receive, pattern, prefix)
end

local function send(self, data, i, j)
  local deadline = deadline_of(self, self.timeout)
  if not self._shaken then
    local ok, err = handshake_first(self, deadline)
    if not ok then return nil, err, (i or 1) - 1 end
  end
  local e = self.engine
  local from = i
  while true do
    local last, serr, sent = e:send(data, from, j)
    local fok, ferr = flush(self, deadline)
    if last then
      if not fok then return nil, ferr, last end
      return last
    end
    if serr ~= "wantread" and serr ~= "wantwrite" then
      return nil, self._closed and "closed" or serr, sent
    end
    if fok and serr == "wantread" then fok, ferr = fill(self, deadline) end
    if not fok then return nil, self._closed and "closed" or ferr, sent end
    from = sent + 1
  end
end

local function check_index(v, arg)
  if v ~= nil and (type(v) ~= "number" or v ~= math.floor(v)) then
    error(("bad argument #%d to 'send' (integer expected, got %s)"):format(arg,
      type(v) == "number" and tostring(v) or type(v)), 3)
  end
end

-- c:send(data [, i [, j]]) -> last index sent | nil, err, last index sent
function Conn:send(data, i, j)
  local kind = type(data)
  if kind ~= "string" then
    if kind ~= "number" then
      error("bad argument #1 to 'send' (string expected, got " .. kind .. ")", 2)
    end
    data = tostring(data)
  end
  -- checked here: before the handshake, i would only be used in arithmetic
  if i ~= nil then check_index(i, 2) end
  if j ~= nil then check_index(j, 3) end
  return run(self, "send", send, data, i, j)
end

-- c:close() -> true. Queues close_notify and sends it (within the conn's
-- timeout, one second at most), then closes the transport. Idempotent; a
-- close from another coroutine while one waits in the conn skips the
-- close_notify and just closes the transport (which wakes the waiter).
function Conn:close()
  if self._closed then return true end
  self._closed = true
  local e = self.engine
  e:close()
  if self._owner == nil and self._shaken and not self._broken then
    local t = self.timeout
    if t == nil or t > 1 then t = 1 end
    pcall(flush, self, deadline_of(self, t))
  end
  self._broken = "closed"
  pcall(self.transport.close, self.transport)
  return true
end
Conn.__close = Conn.close

-- c:probe() -> true while the peer has neither closed nor sent anything:
-- one transport read bounded by 0 s. (A pooled conn's check before reuse:
-- receive with timeout 0 returns only what is already here, never reading,
-- so a peer's close while the conn sat idle would go unseen.) A byte of data
-- it finds is kept for the next receive: HTTP/2's idle poll reads frames
-- right after it (a PING, a SETTINGS).
local function probe(self)
  if not self._shaken or self._broken then return false end
  if self._held then return false end
  -- a transport whose reads always wait (HAProxy's), or that cannot bound a
  -- read (no settimeout), cannot be probed: the conn passes, and a request
  -- that finds it closed is retried when it may be
  if self._cannot_poll or not self._settimeout then return true end
  local e = self.engine
  local data, err = e:receive(1)
  if data then self._held = data end
  if data or err ~= "wantread" then return false end
  local t = self.timeout
  self.timeout = 0
  local ok, fed, ferr = ypcall(fill, self, nil)
  self.timeout = t
  if not ok then error(fed, 0) end
  if not fed then return ferr == "timeout" end
  data, err = e:receive(1)
  if data then self._held = data end
  return data == nil and err == "wantread"
end

function Conn:probe()
  if self._closed then return false end
  return run(self, "probe", probe)
end

-- c:settimeout(t): seconds per operation; nil or negative: none.
function Conn:settimeout(t)
  self.timeout = check_timeout(t, "tls.over: settimeout")
  return true
end

function Conn:gettimeout() return self.timeout end

-- c:setmaxline(bytes), c:getmaxline(): the longest line "*l"/"*L" return.
function Conn:setmaxline(bytes) return self.engine:setmaxline(bytes) end
function Conn:getmaxline() return self.engine:getmaxline() end
function Conn:info() return self.engine:info() end
function Conn:peer() return self.engine:peer() end
function Conn:dirty() return self._held ~= nil or self.engine:dirty() end

function Conn:__tostring()
  return "tls.over (" .. tostring(self.engine) .. ")"
end

--- tls.over(transport, opts) -> conn | nil, err
-- opts: tls.engine's options (mode, servername, config or config options,
-- policy, buffer_limit) plus timeout (seconds per operation).
local function over(transport, opts)
  local tt = type(transport)
  if (tt ~= "table" and tt ~= "userdata") or not method_of(transport, "read")
      or not method_of(transport, "write") or not method_of(transport, "close") then
    error("tls.over: expected a transport with read, write and close methods "
      .. "(tls.transport.ngx(sock), tls.transport.cqueues(sock), ...), got "
      .. tostring(transport), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("tls.over: options must be a table, got " .. type(opts), 2)
  end
  opts = opts or {}
  local timeout = check_timeout(opts.timeout, "tls.over")
  local ok, e, err = pcall(tls.engine, opts)
  if not ok then
    error((tostring(e):gsub("^tls%.engine", "tls.over")), 2)
  end
  if not e then return nil, err end
  local read_max = READ_MAX
  if opts.buffer_limit and opts.buffer_limit < read_max then read_max = opts.buffer_limit end
  return setmetatable({
    engine = e, transport = transport, timeout = timeout, _read_max = read_max,
    _now = method_of(transport, "now"), _settimeout = method_of(transport, "settimeout"),
    _cannot_poll = pcall(function() assert(transport.cannot_poll == true) end),
  }, Conn)
end

return over
