-- tls.transport.cqueues(sock): a connected cqueues socket as a transport for
-- tls.over. Reads and writes use the socket's raw recv/send and wait in
-- cqueues.poll, so inside a cqueues coroutine other coroutines run while a
-- conn waits (outside a controller, cqueues.poll blocks). The transport
-- takes the socket over: binary mode, no output buffering, and buffers of
-- one TLS record.

local cqueues = require "cqueues"
local errno = require "cqueues.errno"

local poll, monotime = cqueues.poll, cqueues.monotime
local isyieldable = coroutine.isyieldable
local EAGAIN, EPIPE, ECONNRESET = errno.EAGAIN, errno.EPIPE, errno.ECONNRESET

-- The socket's own buffer sizes (cqueues' default is 4 KiB each). A send
-- is copied into the output buffer and written out whenever it holds more
-- than this, so with 4 KiB a 16 KiB record left in three send(2) calls; and
-- a read returns at most this much. One full record (16 KiB of data plus
-- its header, tag and padding) goes out in one call and comes in with one.
local RECORD_BUF = 16384 + 1024

local T = {}
T.__index = T
T.__name = "tls.transport.cqueues"

-- Wait until pollee is ready: true | nil, "timeout".
local function wait(self, pollee)
  if isyieldable and cqueues.running() and not isyieldable() then
    -- say why instead of Lua's "attempt to yield across a C-call boundary"
    error("tls.transport.cqueues: cannot wait for I/O here: this code runs inside a "
      .. "C function that cannot yield (a table.sort comparator, a string.gsub "
      .. "callback, a __gc handler ...); call it from the coroutine's own code", 0)
  end
  local deadline = self.timeout and monotime() + self.timeout
  while true do
    if self.closed then return nil, "closed" end
    local r
    if deadline then
      local left = deadline - monotime()
      if left <= 0 then return nil, "timeout" end
      r = poll(pollee, left)
    else
      r = poll(pollee)
    end
    if r == pollee then return true end
  end
end

local function failure(why, what)
  if why == nil or why == EPIPE or why == ECONNRESET then return nil, "closed" end
  return nil, what .. ": " .. errno.strerror(why)
end

function T:read(max)
  local sock = self.sock
  while true do
    if self.closed then return nil, "closed" end
    local data, why = sock:recv(-max, "b")
    if data then return data end
    if why ~= EAGAIN then return failure(why, "receive") end
    local ok, err = wait(self, self.rpoll)
    if not ok then return nil, err end
  end
end

function T:write(data)
  local sock, i, n = self.sock, 1, #data
  while i <= n do
    if self.closed then return nil, "closed" end
    local sent, why = sock:send(data, i, n, "bn")
    i = i + (sent or 0)
    if i <= n then
      if why ~= EAGAIN and why ~= nil then return failure(why, "send") end
      local ok, err = wait(self, self.wpoll)
      if not ok then return nil, err end
    end
  end
  return true
end

function T:settimeout(s) self.timeout = s end
-- t:now() is cqueues.monotime itself (it ignores its argument): tls.over
-- reads the clock twice per operation, and this saves a Lua call each time.
T.now = monotime

function T:close()
  if self.closed then return true end
  self.closed = true
  return self.sock:close()
end

return function(sock)
  if (type(sock) ~= "userdata" and type(sock) ~= "table") or not pcall(function()
        assert(type(sock.recv) == "function" and type(sock.pollfd) == "function")
      end) then
    error("tls.transport.cqueues: expected a connected cqueues socket, got "
      .. tostring(sock), 2)
  end
  sock:setmode("b", "bn")
  sock:setbufsiz(RECORD_BUF, RECORD_BUF)
  -- a cqueues socket's own events() follow its buffered API, not the raw
  -- recv/send used here, so poll its descriptor for what we need
  local fd = sock:pollfd()
  return setmetatable({
    sock = sock, rpoll = { pollfd = fd, events = "r" }, wpoll = { pollfd = fd, events = "w" },
  }, T)
end
