-- tls.transport: ready transports for tls.over, one file per host, loaded
-- on first use (each needs only its own host's library):
--   tls.transport.ngx(cosocket)        nginx's lua module (OpenResty)
--   tls.transport.haproxy(core_tcp)    HAProxy's core.tcp()
--   tls.transport.cqueues(socket)      a cqueues socket
--   tls.transport.socket(tcp)          a connected LuaSocket tcp object
-- and, for clients that open their own connections (tls.https):
--   tls.transport.here()               the host this code runs in
--   tls.transport.connect(kind, host, port, timeout) -> transport | nil, err

local known = { ngx = true, haproxy = true, cqueues = true, socket = true }

local M = {}

-- nginx phases in which cosockets work (ngx_lua's documentation)
local cosocket_phases = {
  rewrite = true, access = true, content = true, timer = true, ssl_cert = true,
  ssl_session_fetch = true, ssl_client_hello = true, preread = true,
}

-- "ngx" inside an nginx request (or timer) that may use cosockets,
-- "cqueues" inside a coroutine run by a cqueues controller, else "socket".
function M.here()
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and type(ngx.get_phase) == "function" then
    local ok, phase = pcall(ngx.get_phase)
    if ok and cosocket_phases[phase] then return "ngx" end
  end
  local cqueues = package.loaded.cqueues
  if type(cqueues) == "table" and type(cqueues.running) == "function" then
    -- (a coroutine of the user's own inside a cqueues coroutine would not
    -- hand its yields to the controller: only the controller's own count)
    local controller, managed = cqueues.running()
    if controller and managed then return "cqueues" end
  end
  return "socket"
end

local function ngx_connect(host, port, timeout)
  local ngx = rawget(_G, "ngx")
  local sock = ngx.socket.tcp()
  local t = M.ngx(sock)
  -- (through the transport, which bounds it: the cosocket raises "bad
  -- timeout value" past 2^31 ms)
  if timeout then t:settimeout(timeout) end
  local ok, err = sock:connect(host, port)
  if not ok then
    sock:close()
    if err == "timeout" then return nil, "timeout" end
    return nil, "connect: " .. tostring(err)
  end
  return t
end

local function cqueues_connect(host, port, timeout)
  local csocket = require "cqueues.socket"
  local errno = require "cqueues.errno"
  -- (nodelay: a record written after a short one must not wait for an ACK)
  local sock = csocket.connect { host = host, port = port, nodelay = true }
  sock:onerror(function(_, _, why) return why end)  -- errors as values, never raised
  local ok, why = sock:connect(timeout)
  if not ok then
    sock:close()
    if why == errno.ETIMEDOUT then return nil, "timeout" end
    return nil, "connect: " .. (type(why) == "number" and errno.strerror(why) or tostring(why))
  end
  return M.cqueues(sock)
end

local function socket_connect(host, port, timeout)
  local socket = require "socket"
  local sock = socket.tcp()
  sock:settimeout(timeout)
  local ok, err = sock:connect(host, port)
  if not ok then
    sock:close()
    if err == "timeout" then return nil, "timeout" end
    return nil, "connect: " .. tostring(err)
  end
  sock:setoption("tcp-nodelay", true)
  return M.socket(sock)
end

local connectors = { ngx = ngx_connect, cqueues = cqueues_connect, socket = socket_connect }

-- A TCP connection to host:port (within timeout seconds; nil: none) as a
-- transport of the given kind ("ngx", "cqueues" or "socket").
function M.connect(kind, host, port, timeout)
  local connect = connectors[kind]
  if not connect then
    error("tls.transport.connect: kind must be \"ngx\", \"cqueues\" or \"socket\", got "
      .. tostring(kind), 2)
  end
  return connect(host, port, timeout)
end

return setmetatable(M, {
  __index = function(t, name)
    if not known[name] then
      error("tls.transport: no transport named '" .. tostring(name)
        .. "' (there are ngx, haproxy, cqueues and socket)", 2)
    end
    local make = require("tls.transport." .. name)
    rawset(t, name, make)
    return make
  end,
})
