-- tls.transport.socket(tcp): a connected LuaSocket tcp object as a
-- transport for tls.over. It waits in socket.select, so it blocks the whole
-- process: for scripts and tests, and for hosts with nothing else to run.

local socket = require "socket"

local select, gettime = socket.select, socket.gettime

local T = {}
T.__index = T
T.__name = "tls.transport.socket"

-- 1..max bytes as soon as any arrive.
function T:read(max)
  local sock = self.sock
  while true do
    local data, err, part = sock:receive(max)
    if data then return data end
    if part and part ~= "" then return part end
    if err ~= "timeout" then return nil, err end
    local r, _, serr = select({ sock }, nil, self.timeout)
    if serr == "timeout" and #r == 0 then return nil, "timeout" end
  end
end

function T:write(data)
  local sock, i = self.sock, 1
  while true do
    local last, err, sent = sock:send(data, i)
    if last then return true end
    if err ~= "timeout" then return nil, err end
    i = sent + 1
    local _, w, serr = select(nil, { sock }, self.timeout)
    if serr == "timeout" and #w == 0 then return nil, "timeout" end
  end
end

-- socket.select turns seconds into an int: past 2^31 it raises "select
-- failed", so a bound that large (68 years) means none.
local FOREVER = 2147483647

function T:settimeout(s)
  if s and s >= FOREVER then s = nil end
  self.timeout = s
end
function T:now() return gettime() end
function T:close() return self.sock:close() end

return function(sock)
  if (type(sock) ~= "userdata" and type(sock) ~= "table") or not pcall(function()
        assert(type(sock.receive) == "function" and type(sock.send) == "function")
      end) then
    error("tls.transport.socket: expected a connected LuaSocket tcp object, got "
      .. tostring(sock), 2)
  end
  sock:settimeout(0)
  return setmetatable({ sock = sock }, T)
end
