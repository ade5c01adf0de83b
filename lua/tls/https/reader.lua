-- A buffered reader for tls.https over a tls.conn (or a LuaSocket tcp):
-- bounded lines and "whatever has arrived", each wait bounded
-- by the per-read timeout and by the request's total deadline.
--
-- It reads with timeout 0 first (the conn returns what it has, with
-- "wantread" or LuaSocket's "timeout"), then blocks for one more byte under
-- the timeout. So a line is never read unbounded in C, and a trickling peer
-- is caught by the deadline.

local reader = {}
local R = {}
R.__index = R

local CHUNK = 65536

-- reader.new(conn, read_timeout | nil, deadline | nil, now)
function reader.new(conn, read_timeout, deadline, now)
  return setmetatable({
    conn = conn, buf = "", pos = 1, read_timeout = read_timeout,
    deadline = deadline, now = now, received = 0,
  }, R)
end

-- The timeout for the next blocking wait, or nil once the deadline passed.
function R:wait_time()
  local t = self.read_timeout
  if self.deadline then
    local left = self.deadline - self.now()
    if left <= 0 then return nil end
    if not t or left < t then t = left end
  end
  return t or -1
end

function R:buffered()
  return #self.buf - self.pos + 1
end

local function append(self, data)
  self.received = self.received + #data
  if self.pos > #self.buf then
    self.buf = data
  else
    self.buf = self.buf:sub(self.pos) .. data
  end
  self.pos = 1
end

-- Read more bytes into the buffer: true | nil, "closed" | "timeout" | message
function R:more()
  local conn = self.conn
  conn:settimeout(0)
  local data, err, part = conn:receive(CHUNK)
  if data then append(self, data); return true end
  if part and part ~= "" then append(self, part); return true end
  if err ~= "wantread" and err ~= "wantwrite" and err ~= "timeout" then
    return nil, err
  end
  local t = self:wait_time()
  if not t then return nil, "timeout" end
  conn:settimeout(t)
  data, err = conn:receive(1)
  if data then append(self, data); return true end
  return nil, err
end

-- A line without its CR LF, at most `limit` bytes: line | nil, err, where
-- err is "too long" when the limit was passed.
function R:line(limit)
  while true do
    local i = self.buf:find("\n", self.pos, true)
    if i then
      local stop = i - 1
      if stop >= self.pos and self.buf:byte(stop) == 13 then stop = stop - 1 end
      if stop - self.pos + 1 > limit then return nil, "too long" end
      local line = self.buf:sub(self.pos, stop)
      self.pos = i + 1
      return line
    end
    if self:buffered() > limit then return nil, "too long" end
    local ok, err = self:more()
    if not ok then return nil, err end
  end
end

-- Up to `max` bytes (at least one): data | nil, err
function R:some(max)
  if self:buffered() == 0 then
    local ok, err = self:more()
    if not ok then return nil, err end
  end
  local stop = self.pos + max - 1
  local data
  if self.pos == 1 and stop >= #self.buf then
    data = self.buf
  else
    data = self.buf:sub(self.pos, stop)
  end
  self.pos = self.pos + #data
  if self.pos > #self.buf then self.buf, self.pos = "", 1 end
  return data
end

return reader
