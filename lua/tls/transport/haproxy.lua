-- tls.transport.haproxy(sock [, opts]): HAProxy's core.tcp() socket,
-- connected, as a transport for tls.over.
--
-- HAProxy's socket:receive(n) returns only once exactly n bytes arrived (it
-- has no "whatever is there" read), and waiting for more bytes than the
-- peer has sent would stall a TLS handshake. TLS tells us how many bytes
-- come next: each record starts with a 5-byte header whose last two bytes
-- are the length of the body. So read(max) returns a header, then the body
-- in pieces of at most opts.piece bytes (default 8192): HAProxy 2.6 stalls
-- on a receive(n) larger than what its buffer (tune.bufsize, 16 KiB by
-- default) holds at once, so a piece must stay well under tune.bufsize.

local T = {}
T.__index = T
T.__name = "tls.transport.haproxy"
-- (tls.over: a read here cannot return at once when nothing is there, as a
-- timeout ends the socket; so a pooled conn is not probed before reuse)
T.cannot_poll = true

local DEFAULT_PIECE = 8192

local function word(err)
  if err == nil then return "closed" end
  if type(err) == "string" and (err:find("closed", 1, true) or err:find("reset", 1, true)) then
    return "closed"
  end
  return err
end

local FOREVER = 2147483  -- seconds: HAProxy refuses more than INT_MAX milliseconds

-- HAProxy 2.6 ends a core.tcp() socket whose receive times out: the
-- receive returns what had come (fewer bytes than asked) or nil,
-- "connection closed.". A receive that ran for its whole bound timed out,
-- so it says "timeout" (the socket is gone all the same: later reads say
-- "closed"). Bytes that came before the end are returned first.
local function receive(self, n)
  local bound = self.timeout or FOREVER
  local started = bound < FOREVER and self:now()
  local data, err = self.sock:receive(n)
  if data and #data == n then return data end
  local why = word(err)
  if started and why == "closed" and self:now() - started >= bound - 0.001 then why = "timeout" end
  if data and data ~= "" then
    self.pending = why
    return data
  end
  return nil, why
end

function T:read(max)
  if self.pending then
    local why = self.pending
    self.pending = nil
    return nil, why
  end
  if self.left == 0 then
    local data, err = receive(self, 5 - #self.head)
    if not data then return nil, err end
    local head = self.head .. data
    if #head < 5 then
      self.head = head  -- (the stream ended inside a header: the engine will say so)
    else
      self.head, self.left = "", head:byte(4) * 256 + head:byte(5)
    end
    return data
  end
  local n = self.left
  if n > max then n = max end
  if n > self.piece then n = self.piece end
  local data, err = receive(self, n)
  if not data then return nil, err end
  self.left = self.left - #data
  return data
end

function T:write(data)
  local n, err = self.sock:send(data)
  if n then return true end
  return nil, word(err)
end

-- Seconds: whole ones above one second, set only when the bound changes
-- rather than before every read; below, the fraction (HAProxy 2.6 takes
-- milliseconds, at least one). None (or more than it takes, INT_MAX
-- milliseconds, which raised) is the most.
function T:settimeout(s)
  local t = FOREVER
  if s and s < FOREVER then
    t = s >= 1 and math.ceil(s) or math.max(s, 0.001)
  end
  if t ~= self.timeout then
    self.timeout = t
    self.sock:settimeout(t)
  end
end

function T:now()
  local t = rawget(_G, "core").now()
  return t.sec + t.usec / 1e6
end

function T:close() return self.sock:close() end

return function(sock, opts)
  if type(rawget(_G, "core")) ~= "table" then
    error("tls.transport.haproxy: runs only inside HAProxy's Lua (no core here)", 2)
  end
  if sock == nil or not pcall(function() assert(sock.receive and sock.send) end) then
    error("tls.transport.haproxy: expected a connected core.tcp() socket, got "
      .. tostring(sock), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("tls.transport.haproxy: options must be a table, got " .. type(opts), 2)
  end
  local piece = opts and opts.piece or DEFAULT_PIECE
  if type(piece) ~= "number" or piece < 1 or piece ~= math.floor(piece) then
    error("tls.transport.haproxy: option 'piece' must be a positive integer, got "
      .. tostring(piece), 2)
  end
  return setmetatable({ sock = sock, left = 0, head = "", piece = piece }, T)
end
