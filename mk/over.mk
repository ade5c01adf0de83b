# tls.over in real hosts: nginx's lua module (OpenResty's LuaJIT) and
# HAProxy (Lua 5.3), for spec/over_nginx_spec.lua, spec/over_haproxy_spec.lua
# and the examples/nginx, examples/haproxy recipes.
EXTRA_APT_PKGS += libnginx-mod-http-lua haproxy

# The nginx and HAProxy specs load the LuaJIT and Lua 5.3 builds of the
# module (build/jit, build/5.3); `make test` (the 5.4 run, which CI runs
# before the other versions) makes them first. The other versions' runs use
# what is there: test-versions runs two of them at once, and two makes must
# not build the same directory together.
.PHONY: over-host-builds
# `make deps` (without ALL=1) does not install LuaJIT's or 5.3's headers:
# without them the build is skipped with a note and those specs pend, so the
# README's `make test` works on a fresh machine.
# BUILD is named: a BUILD given to this make (make PORTABLE=1 BUILD=build/portable
# test) would otherwise reach these builds too and put them over the 5.4 module.
over-host-builds:
	@if sh tools/ensure-packages.sh --check luajit2 libluajit2-5.1-dev; then \
	  $(MAKE) --no-print-directory LUA_VERSION=jit BUILD=build/jit build; \
	else echo "over-host-builds: no LuaJIT build (spec/over_nginx_spec.lua pends; make deps ALL=1 installs it)"; fi
	@if sh tools/ensure-packages.sh --check lua5.3 liblua5.3-dev; then \
	  $(MAKE) --no-print-directory LUA_VERSION=5.3 BUILD=build/5.3 build; \
	else echo "over-host-builds: no Lua 5.3 build (spec/over_haproxy_spec.lua pends; make deps ALL=1 installs it)"; fi
ifeq ($(or $(LUA_VERSION),5.4),5.4)
test: over-host-builds
endif
