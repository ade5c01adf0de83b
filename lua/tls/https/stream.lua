-- Pull-style responses for tls.https (stream = true): the call returns
-- after the response head, and the caller reads the body when it wants:
--   res:read(n)      -> up to n bytes (all that is left for "a") | nil at the end | nil, err
--   res:iter([size]) -> iterator over chunks (raises on an error)
--   res:lines()      -> iterator over lines without CR LF (raises on an error)
--   res:close()      -> stops reading; the connection goes back to the pool
--                       only when the body was read to its end
--
-- The request runs in a coroutine whose sink yields each body chunk here.
-- Yields that are not ours (the host's: cqueues waiting on a socket) are
-- passed up to the caller's own coroutine and their answers passed back.

local unpack = table.unpack or unpack

local stream = {}

local TAG = {}

local function pack(...) return { n = select("#", ...), ... } end

local methods = {}

-- Resume the request; -> the values of our next yield (or of the end)
local function step(self, ...)
  local co = self.co
  local r = pack(coroutine.resume(co, ...))
  while true do
    if not r[1] then
      self.done, self.err = true, tostring(r[2])
      return "error", self.err
    end
    if r[2] == TAG then return unpack(r, 3, r.n) end
    if coroutine.status(co) == "dead" then
      self.done, self.err = true, "the request ended without a result"
      return "error", self.err
    end
    -- a yield of the host (cqueues): up to our caller's coroutine, and back
    r = pack(coroutine.resume(co, coroutine.yield(unpack(r, 2, r.n))))
  end
end

-- The next chunk from the request: chunk | nil (end) | nil, err
local function next_chunk(self, cmd)
  if self.done then return nil, self.err end
  local kind, a, b = step(self, cmd)
  if kind == "data" then return a end
  self.done = true
  if kind == "done" then
    if not a then self.err = b end
    return nil, self.err
  end
  self.err = a
  return nil, a
end

function methods.read(self, n)
  local buf = self.buffer
  if n == "a" or n == "*a" then
    local parts = { buf }
    while true do
      local chunk, err = next_chunk(self)
      if not chunk then
        if err then return nil, err end
        break
      end
      parts[#parts + 1] = chunk
    end
    self.buffer = ""
    return table.concat(parts)
  end
  if type(n) ~= "number" or n < 1 or n ~= math.floor(n) then
    error("tls.https: res:read(n) takes a byte count or \"a\", got " .. tostring(n), 2)
  end
  if buf == "" then
    local chunk, err = next_chunk(self)
    if not chunk then return nil, err end
    buf = chunk
  end
  local out = buf:sub(1, n)
  self.buffer = buf:sub(n + 1)
  return out
end

function methods.iter(self, size)
  size = size or 65536
  return function()
    local chunk, err = methods.read(self, size)
    if err then error("tls.https: " .. err, 2) end
    return chunk
  end
end

-- The longest line res:lines() returns unless told otherwise: a server
-- that never sends LF must not grow one line up to max_body.
stream.MAX_LINE = 1024 * 1024

-- res:lines([max]): each chunk is searched once and a line's pieces are
-- joined once (not the buffer again and again: quadratic in a long line).
function methods.lines(self, max)
  max = max or stream.MAX_LINE
  if type(max) ~= "number" or max < 1 then
    error("tls.https: res:lines(max) takes a byte count, got " .. tostring(max), 2)
  end
  local function too_long()
    methods.close(self)  -- the rest is not read: the request ends here
    self.err = ("a line of the body is over %d bytes (res:lines(max) sets the bound)"):format(max)
    error("tls.https: " .. self.err, 3)
  end
  return function()
    local parts, n, len = { self.buffer }, 1, #self.buffer
    local i = self.buffer:find("\n", 1, true)
    while not i do
      if len > max + 1 then too_long() end  -- (+1: a CR before the LF to come)
      local chunk, err = next_chunk(self)
      if not chunk then
        self.buffer = table.concat(parts)
        if err then error("tls.https: " .. err, 2) end
        if self.buffer == "" then return nil end
        local rest = self.buffer
        if #rest > max then too_long() end
        self.buffer = ""
        return rest
      end
      n, len = n + 1, len + #chunk
      parts[n] = chunk
      i = chunk:find("\n", 1, true)
    end
    local last = parts[n]
    parts[n] = last:sub(1, i - 1)
    self.buffer = last:sub(i + 1)
    local line = table.concat(parts):gsub("\r$", "")
    if #line > max then too_long() end
    return line
  end
end

function methods.close(self)
  if not self.done then
    -- the sink refuses the rest: HTTP/1.1 closes the connection, HTTP/2
    -- resets the stream; either way the request ends here
    next_chunk(self, "stop")
    self.done, self.err = true, "the response was closed"
  end
  self.buffer = ""
  return true
end

-- stream.open(st, perform) -> res (its body to read) | nil, err
function stream.open(st, perform)
  st.sink = function(chunk)
    if chunk == nil then return 1 end
    if coroutine.yield(TAG, "data", chunk) == "stop" then
      return nil, "the caller closed the response"
    end
    return 1
  end
  st.on_head = function(res)
    coroutine.yield(TAG, "head", res)
  end
  local self = { buffer = "" }
  self.co = coroutine.create(function()
    local res, err = perform(st)
    return TAG, "done", res, err
  end)
  local kind, res, err = step(self)
  if kind == "error" then return nil, res end
  if kind == "done" then return nil, err or "the response ended before its head" end
  -- kind == "head"
  for name, fn in pairs(methods) do
    res[name] = function(_, ...) return fn(self, ...) end
  end
  return res
end

return stream
