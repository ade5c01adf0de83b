-- tls.transport: ready transports for tls.over, one file per host, loaded
-- on first use (each needs only its own host's library):
--   tls.transport.ngx(cosocket)        nginx's lua module (OpenResty)
--   tls.transport.haproxy(core_tcp)    HAProxy's core.tcp()
--   tls.transport.cqueues(socket)      a cqueues socket
--   tls.transport.socket(tcp)          a connected LuaSocket tcp object

local known = { ngx = true, haproxy = true, cqueues = true, socket = true }

return setmetatable({}, {
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
