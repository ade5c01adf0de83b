# tls.over in real hosts: nginx's lua module (OpenResty's LuaJIT) and
# HAProxy (Lua 5.3), for spec/over_nginx_spec.lua, spec/over_haproxy_spec.lua
# and the examples/nginx, examples/haproxy recipes.
EXTRA_APT_PKGS += libnginx-mod-http-lua haproxy
