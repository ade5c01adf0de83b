-- tls.cqueues: lua-tls connections inside cqueues coroutines.
--
-- The C core never blocks, yields or calls back into Lua: with a timeout of 0
-- every operation returns nil, "wantread" or "wantwrite". This adapter does
-- all the waiting here, in Lua, through cqueues.poll: a socket conn is polled
-- directly (it speaks the pollfd/events/timeout protocol), an engine is pumped
-- over a cqueues socket (drain -> socket, socket -> feed). Inside a coroutine
-- run by a cqueues controller, handshake/receive/send/accept then look
-- blocking while other coroutines run.
--
--   local tcq = require "tls.cqueues"          -- or tls.cqueues
--   local c = tcq.wrap(conn, {timeout = 10})   -- a socket conn
--   local c = tcq.wrap(engine, {socket = cqsock, timeout = 10})
--   local c = tcq.connect("example.org", 443, {timeout = 10})
--   local c = tcq.accept(listener)             -- handshake done
--   local c = tcq.accept_raw(listener)         -- handshake left to c:handshake()
--
-- cqueues is loaded here only; the rest of lua-tls does not need it.

local cqueues = require "cqueues"
local errno = require "cqueues.errno"
local tls = require "tls"
local compat = require "tls.compat"

local poll, monotime, running = cqueues.poll, cqueues.monotime, cqueues.running
local isyieldable, co_running, co_status =
  compat.isyieldable, coroutine.running, coroutine.status
-- pcall that lets the I/O inside it yield, even on Lua 5.1
local cpcall = compat.pcall
local EAGAIN, EPIPE, ECONNRESET = errno.EAGAIN, errno.EPIPE, errno.ECONNRESET

local M = { _VERSION = tls._VERSION }


-- Largest read from the socket per wakeup: one full TLS record.
local READ_CHUNK = 16384 + 512

local Conn = {}
Conn.__index = Conn
Conn.__name = "tls.cqueues.conn"

local function deadline_of(timeout)
  if timeout == nil or timeout < 0 then return nil end
  return monotime() + timeout
end

local function check_timeout(t, where)
  local why = tls.core.timeout_problem(t)
  if why then error(where .. ": timeout " .. why, 3) end
  return t
end

-- Wait until obj is ready or the deadline passes: true | nil, "timeout".
-- All waiting in this module goes through here.
local function wait(obj, deadline)
  if running() and not isyieldable() then
    -- say why instead of Lua's "attempt to yield across a C-call boundary"
    error("tls.cqueues: cannot wait for I/O here: this code runs inside a C "
      .. "function that cannot yield (a table.sort comparator, a string.gsub "
      .. "callback, a __gc handler ...); call it from the coroutine's own code", 0)
  end
  while true do
    local left
    if deadline then
      left = deadline - monotime()
      if left <= 0 then return nil, "timeout" end
    end
    local r
    if left then r = poll(obj, left) else r = poll(obj) end
    if r == obj then return true end
  end
end

-- One operation at a time per connection: a second coroutine that comes in
-- while the first waits gets a clear error, not interleaved TLS state.
local function enter(self, what)
  local owner = self._owner
  if owner ~= nil and co_status(owner) ~= "dead" then
    error(("tls.cqueues: %s: this connection is already in use by another "
      .. "coroutine (it is waiting in %s); use one coroutine per connection "
      .. "or serialise access"):format(what, self._busy), 3)
  end
  self._owner, self._busy = co_running(), what
end

local function leave(self, ok, ...)
  self._owner, self._busy = nil, nil
  if not ok then error((...), 0) end
  return ...
end

--- Transports: each has want(self, err, deadline) -> true | nil, err, which
--- waits until retrying the operation that returned err ("wantread" or
--- "wantwrite") can make progress, and flush(self, deadline), which sends
--- whatever the connection queued.

-- A socket conn: poll the conn itself (pollfd/events from its last want).
local sock_transport = {}

function sock_transport.want(self, _, deadline)
  return wait(self.conn, deadline)
end

function sock_transport.flush() return true end

-- An engine over a cqueues socket.
local engine_transport = {}

-- Write everything the engine has queued (plus anything left from a timed
-- out flush) to the socket.
function engine_transport.flush(self, deadline)
  local data = self._unsent .. self.conn:drain()
  self._unsent = ""
  local sock, i = self.socket, 1
  while i <= #data do
    if self._socket_closed then return nil, "closed" end
    local n, why = sock:send(data, i, #data, "bn")
    i = i + (n or 0)
    if i <= #data then
      if why == EAGAIN or why == nil then
        local ok, err = wait(self._wpoll, deadline)
        if not ok then
          self._unsent = data:sub(i)
          return nil, err
        end
      elseif why == EPIPE or why == ECONNRESET then
        return nil, "closed"
      else
        return nil, "send: " .. errno.strerror(why)
      end
    end
  end
  return true
end

-- Move ciphertext from the socket into the engine: true | nil, err. End of
-- stream is handed to the engine (feed_eof), which then reports "closed"
-- (after close_notify), "truncated" (without it) or
-- a handshake failure itself. An engine says "wantread" only once its input
-- queue is empty, and its limit is at least one record, so a read of one
-- record always fits.
local function fill(self, deadline)
  local sock, conn = self.socket, self.conn
  while true do
    -- closed by another coroutine while we waited
    if self._socket_closed then return nil, "closed" end
    local data, why = sock:recv(-READ_CHUNK, "b")
    if data then
      local ok, err = conn:feed(data)
      if not ok then return nil, err end
      return true
    end
    if why == EAGAIN then
      local ok, err = wait(self._rpoll, deadline)
      if not ok then return nil, err end
    elseif why == nil or why == EPIPE or why == ECONNRESET then
      conn:feed_eof()
      return true
    else
      return nil, "receive: " .. errno.strerror(why)
    end
  end
end

function engine_transport.want(self, err, deadline)
  local ok, ferr = engine_transport.flush(self, deadline)
  if not ok then return nil, ferr end
  if err == "wantread" then return fill(self, deadline) end
  return true
end

--- Wrapping

-- tcq.wrap(conn_or_engine, opts) -> wrapped conn. opts: socket (a cqueues
-- socket, required for an engine and only for one), timeout (seconds per
-- operation; nil waits forever). The conn is switched to non-blocking mode.
function M.wrap(conn, opts)
  if tls.core.type(conn) ~= "tls.conn" then
    error("tls.cqueues.wrap: expected a tls conn or engine, got " .. tostring(conn), 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then
    error("tls.cqueues.wrap: options must be a table, got " .. type(opts), 2)
  end
  for k in pairs(opts) do
    if k ~= "socket" and k ~= "timeout" then
      error("tls.cqueues.wrap: unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  check_timeout(opts.timeout, "tls.cqueues.wrap")
  local self = setmetatable({ conn = conn, timeout = opts.timeout, _unsent = "" }, Conn)
  local is_engine = conn:kind() == "engine"
  if is_engine then
    local sock = opts.socket
    if sock == nil or type(sock.recv) ~= "function" or type(sock.send) ~= "function"
        or type(sock.pollfd) ~= "function" then
      error("tls.cqueues.wrap: an engine needs option 'socket', a connected "
        .. "cqueues socket, got " .. tostring(sock), 2)
    end
    -- the socket set up as for tls.over (binary, unbuffered, buffers of one
    -- record: a record in one send(2)); its pollables are the descriptor's
    local io = require("tls.transport.cqueues")(sock)
    self.socket, self._t = sock, engine_transport
    self._rpoll, self._wpoll = io.rpoll, io.wpoll
  else
    if opts.socket ~= nil then
      error("tls.cqueues.wrap: option 'socket' is for engines; this conn has its own socket", 2)
    end
    self._t = sock_transport
  end
  conn:settimeout(0)
  return self
end

-- Run op(conn, ...) until it no longer wants I/O. Returns op's results.
local function drive(self, deadline, op, ...)
  local t = self._t
  while true do
    local r1, err, r3 = op(self.conn, ...)
    if err ~= "wantread" and err ~= "wantwrite" then
      -- done or failed: what the engine queued (a Finished, records, an
      -- alert) still goes out before we return
      local ok, ferr = t.flush(self, deadline)
      if r1 and not ok then return nil, ferr end
      return r1, err, r3
    end
    local ok, werr = t.want(self, err, deadline)
    if not ok then return nil, werr, r3 end
  end
end

local function handshake_first(self, deadline)
  if self._shaken then return true end
  if self._closed then return nil, "closed" end
  local ok, err = drive(self, deadline, self.conn.handshake)
  if ok then self._shaken = true end
  if not ok and self._closed then err = "closed" end
  return ok, err
end

-- c:handshake([timeout]) -> true | nil, err. Without a timeout, the one
-- given to wrap()/settimeout() applies.
function Conn:handshake(timeout)
  check_timeout(timeout, "handshake")
  if timeout == nil then timeout = self.timeout end
  enter(self, "handshake")
  return leave(self, cpcall(handshake_first, self, deadline_of(timeout)))
end

local function receive(self, pattern, prefix)
  local deadline = deadline_of(self.timeout)
  local ok, err = handshake_first(self, deadline)
  if not ok then return nil, err, prefix or "" end
  local t, conn = self._t, self.conn
  local partial = prefix
  while true do
    local data, rerr, part = conn:receive(pattern, partial)
    if rerr ~= "wantread" and rerr ~= "wantwrite" then
      t.flush(self, deadline)
      if data then return data end
      -- a conn closed meanwhile returns no partial data: keep what we had
      return nil, rerr, part or partial or ""
    end
    partial = part
    local wok, werr = t.want(self, rerr, deadline)
    if not wok then return nil, self._closed and "closed" or werr, partial end
  end
end

-- c:receive([pattern [, prefix]]) with LuaSocket's patterns and returns;
-- the partial data comes back third on "timeout" or "closed".
function Conn:receive(pattern, prefix)
  enter(self, "receive")
  return leave(self, cpcall(receive, self, pattern, prefix))
end

local function send(self, data, i, j)
  local deadline = deadline_of(self.timeout)
  local ok, err = handshake_first(self, deadline)
  if not ok then return nil, err, (i or 1) - 1 end
  local t, conn = self._t, self.conn
  local from = i
  while true do
    local last, serr, sent = conn:send(data, from, j)
    if last then
      local fok, ferr = t.flush(self, deadline)
      if not fok then return nil, ferr, last end
      return last
    end
    if serr ~= "wantread" and serr ~= "wantwrite" then return nil, serr, sent end
    from = sent + 1
    local wok, werr = t.want(self, serr, deadline)
    if not wok then return nil, self._closed and "closed" or werr, sent end
  end
end

-- c:send(data [, i [, j]]) -> last index sent | nil, err, last index sent
function Conn:send(data, i, j)
  if type(data) ~= "string" and type(data) ~= "number" then
    error("bad argument #1 to 'send' (string expected, got " .. type(data) .. ")", 2)
  end
  enter(self, "send")
  return leave(self, cpcall(send, self, tostring(data), i, j))
end

-- c:close() -> true. Sends close_notify (an engine: queued, then flushed for
-- at most a second when the caller can wait) and releases the descriptor.
function Conn:close()
  if self._closed then return true end
  self._closed = true
  local conn = self.conn
  if self.socket then
    conn:close()
    if isyieldable() then
      cpcall(engine_transport.flush, self, deadline_of(math.min(self.timeout or 1, 1)))
    else
      local data = self._unsent .. conn:drain()
      if #data > 0 then pcall(self.socket.send, self.socket, data, 1, #data, "bn") end
    end
    self._socket_closed = true
    self.socket:close()
  else
    local fd = conn:getfd()
    -- forget the descriptor in every controller before it is closed and reused
    if fd >= 0 then cqueues.cancel(fd) end
    conn:close()
  end
  return true
end
Conn.__close = Conn.close

function Conn:settimeout(t)
  self.timeout = check_timeout(t, "settimeout")
  if self.timeout and self.timeout < 0 then self.timeout = nil end
  return true
end

function Conn:gettimeout() return self.timeout end
function Conn:info() return self.conn:info() end
function Conn:peer() return self.conn:peer() end
function Conn:dirty() return self.conn:dirty() end

function Conn:getfd()
  if self.socket then return self.socket:pollfd() end
  return self.conn:getfd()
end

function Conn:__tostring()
  return "tls.cqueues (" .. tostring(self.conn) .. ")"
end

--- Clients

-- c:handshake(...), but a policy that raises closes c (its socket too)
-- before the error goes on: nothing is left to the collector.
local function handshake_or_close(c, ...)
  local done, ok, err = cpcall(c.handshake, c, ...)
  if not done then
    c:close()
    error(ok, 0)
  end
  return ok, err
end

-- tcq.connect(host, port, opts) -> wrapped conn with the handshake done | nil,
-- err. A cqueues socket carries an engine; opts are tls.engine's (servername
-- defaults to host) plus timeout (for the TCP connect, the handshake and each
-- later operation).
function M.connect(host, port, opts)
  if type(host) ~= "string" then
    error("tls.cqueues.connect: host must be a string, got " .. type(host), 2)
  end
  local given = port
  port = compat.port_text(port)
  if not port then
    error("tls.cqueues.connect: port must be an integer or a string, got "
      .. (type(given) == "number" and tostring(given) or type(given)), 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then
    error("tls.cqueues.connect: options must be a table, got " .. type(opts), 2)
  end
  local timeout = check_timeout(opts.timeout, "tls.cqueues.connect")
  local eopts = { mode = "client", servername = host }
  for k, v in pairs(opts) do
    if k ~= "timeout" then eopts[k] = v end
  end
  local engine, err = tls.engine(eopts)
  if not engine then return nil, err end
  local csocket = require "cqueues.socket"
  local sock = csocket.connect { host = host, port = port }
  sock:onerror(function(_, _, why) return why end)  -- errors as values, never raised
  local ok, why = sock:connect(timeout)
  if not ok then
    sock:close()
    return nil, why == errno.ETIMEDOUT and "timeout"
      or ("connect: " .. (type(why) == "number" and errno.strerror(why) or tostring(why)))
  end
  local c = M.wrap(engine, { socket = sock, timeout = timeout })
  ok, err = handshake_or_close(c)
  if not ok then
    c:close()
    return nil, err
  end
  return c
end

--- Servers

-- tcq.accept_raw(listener [, timeout]) -> wrapped conn before its handshake,
-- peer address, peer port | nil, "timeout" | nil, err. Waits for a client
-- without blocking the loop; call c:handshake() next (in the connection's own
-- coroutine, so a slow client does not hold up the accept loop).
function M.accept_raw(listener, timeout)
  if type(listener) ~= "table" or type(listener.accept_raw) ~= "function" then
    error("tls.cqueues.accept_raw: expected a tls.listener, got " .. tostring(listener), 2)
  end
  check_timeout(timeout, "tls.cqueues.accept_raw")
  local deadline = deadline_of(timeout)
  local pollee = listener._cq_pollee
  if not pollee then
    pollee = { pollfd = listener:getfd(), events = "r" }
    listener._cq_pollee = pollee
  end
  while true do
    local conn, addr, port = listener:accept_raw(0)
    if conn then
      local c = M.wrap(conn, { timeout = listener.timeout })
      c.handshake_timeout = listener.handshake_timeout
      return c, addr, port
    end
    if addr ~= "wantread" then return nil, addr end
    local ok, err = wait(pollee, deadline)
    if not ok then return nil, err end
  end
end

-- tcq.accept(listener [, timeout]) -> wrapped conn with the handshake done,
-- peer address, peer port | nil, err. The handshake gets the listener's
-- handshake_timeout (default 10 s); a client that fails it is closed and its
-- error returned, and the listener keeps serving.
function M.accept(listener, timeout)
  local c, addr, port = M.accept_raw(listener, timeout)
  if not c then return nil, addr end
  local ok, err = handshake_or_close(c, c.handshake_timeout)
  if not ok then
    c:close()
    return nil, err .. " (client " .. tostring(addr) .. " port " .. tostring(port) .. ")"
  end
  return c, addr, port
end

--- tcq.pcall(f, ...): pcall through which f's I/O can wait (yield), on every
-- Lua: 5.1's own pcall is a C-call boundary that no yield crosses.
M.pcall = cpcall

return M
