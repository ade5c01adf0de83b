-- nginx with Debian's lua module (OpenResty's LuaJIT) for the tls.over
-- specs: a generated config in a temporary directory, one worker, in the
-- foreground on a free loopback port. Its handlers are
-- spec/peers/over_nginx_app.lua; the module is the LuaJIT build.
local proc = require "support.proc"

local M = {}

local ROOT = os.getenv("PWD")

-- Where the LuaJIT build of the module is: OVER_JIT_CPATH, or the tree's
-- build/jit (make LUA_VERSION=jit build).
function M.jit_cpath()
  local cpath = os.getenv("OVER_JIT_CPATH") or (ROOT .. "/build/jit/?.so")
  local f = io.open((cpath:gsub("%?", "tls/core")), "rb")
  if not f then return nil end
  f:close()
  return cpath
end

function M.available()
  local f = io.open("/usr/lib/nginx/modules/ngx_http_lua_module.so", "rb")
  if not f then return false, "libnginx-mod-http-lua is not installed" end
  f:close()
  if require("tls.core").library.name == "LibreSSL" then
    -- doc/libraries.md; spec/library_spec.lua checks the refusal
    return false, "a module on LibreSSL cannot load inside nginx, which loaded OpenSSL 3 first"
  end
  if not M.jit_cpath() then
    return false, "the LuaJIT build of the module is missing (make LUA_VERSION=jit build)"
  end
  return true
end

local is_root = require("support.https_nginx").is_root -- nginx drops to "nobody" as root

-- M.start{ locations = "nginx location blocks" } -> handle {port, dir, stop()}
function M.start(opts)
  opts = opts or {}
  local p = io.popen("mktemp -d /tmp/lua-tls-over-nginx.XXXXXX")
  local dir = p:read("*l")
  p:close()
  os.execute("chmod 755 " .. dir)
  local port = proc.free_port()
  local conf = ([[
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
%s
worker_processes 1;
error_log %s/error.log warn;
pid %s/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %s/body;
  proxy_temp_path %s/proxy;
  fastcgi_temp_path %s/fastcgi;
  uwsgi_temp_path %s/uwsgi;
  scgi_temp_path %s/scgi;
  lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;%s/spec/?.lua;;";
  lua_package_cpath "%s;;";
  lua_socket_log_errors off;
  %s
  server {
    listen 127.0.0.1:%d;
    location /over { content_by_lua_block { require("peers.over_nginx_app").over() } }
    location /https { content_by_lua_block { require("peers.over_nginx_app").https() } }
    location /upgrade { content_by_lua_block { require("peers.over_nginx_app").upgrade() } }
    %s
  }
}
]]):format(is_root() and "user root;" or "", dir, dir, dir, dir, dir, dir, dir,
    ROOT, ROOT, ROOT, M.jit_cpath(), opts.http or "", port, opts.locations or "")
  local f = assert(io.open(dir .. "/nginx.conf", "w"))
  f:write(conf)
  f:close()
  local h = proc.start(("nginx -p %s -c %s/nginx.conf -g 'daemon off;'"):format(dir, dir),
    { port = port })
  local stop = h.stop
  function h.stop()
    stop()
    os.execute("rm -rf " .. dir)
  end
  function h.error_log()
    local ef = io.open(dir .. "/error.log", "rb")
    if not ef then return "" end
    local s = ef:read("*a")
    ef:close()
    return s
  end
  h.port, h.dir = port, dir
  return h
end

return M
