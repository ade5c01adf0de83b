-- tls.transport.ngx(sock): an nginx cosocket (ngx.socket.tcp(), connected)
-- as a transport for tls.over. receiveany returns as soon as bytes arrive,
-- and the cosocket yields to nginx's event loop while it waits, so one
-- worker serves other requests meanwhile. Needs lua-nginx-module 0.10.14 or
-- later (receiveany); Debian 12's libnginx-mod-http-lua is 0.10.23.

local T = {}
T.__index = T
T.__name = "tls.transport.ngx"

-- cosocket timeouts are milliseconds; "none" is the largest nginx accepts
local FOREVER_MS = 2147483647

-- nginx's words for a peer that went away, which a conn calls "closed"
local function word(err)
  if err == "closed" or (type(err) == "string" and (err:find("reset by peer", 1, true)
      or err:find("broken pipe", 1, true))) then
    return "closed"
  end
  return err
end

function T:read(max)
  local data, err = self.sock:receiveany(max)
  if data then return data end
  return nil, word(err)
end

function T:write(data)
  local n, err = self.sock:send(data)
  if n then return true end
  return nil, word(err)
end

function T:settimeout(s)
  local ms = FOREVER_MS
  if s then
    ms = math.ceil(s * 1000)
    if ms < 1 then ms = 1 end  -- 0 would mean "the configured default"
    if ms > FOREVER_MS then ms = FOREVER_MS end
  end
  self.sock:settimeout(ms)
end

function T:now() return self.clock() end
function T:close() return self.sock:close() end

-- keepalive(...) puts the cosocket back in nginx's connection pool
-- (sock:setkeepalive); only for a conn that ended cleanly.
function T:keepalive(...) return self.sock:setkeepalive(...) end

return function(sock)
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" or type(ngx.now) ~= "function" then
    error("tls.transport.ngx: runs only inside nginx's lua module (no ngx here)", 2)
  end
  local ok = (type(sock) == "table" or type(sock) == "userdata") and pcall(function()
    assert(sock.send and sock.settimeout)
  end)
  if not ok then
    error("tls.transport.ngx: expected a connected cosocket (ngx.socket.tcp()), got "
      .. tostring(sock), 2)
  end
  if not sock.receiveany then
    error("tls.transport.ngx: this nginx lua module has no receiveany "
      .. "(lua-nginx-module 0.10.14 or later needed)", 2)
  end
  return setmetatable({ sock = sock, clock = ngx.now }, T)
end
