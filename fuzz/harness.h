/*
 * Shared libFuzzer plumbing: a Lua state with tls.core linked in (the
 * module's sources are compiled into the fuzzer, instrumented), a driver
 * chunk that returns run(data), and the rule that turns a Lua error into a
 * finding. Peer bytes and PEM text must never make the module raise: any
 * error escaping run() aborts, so libFuzzer keeps the input as a crash.
 * Everything is collected after each input, so LeakSanitizer sees leaks
 * per input rather than at exit.
 */
#ifndef FUZZ_HARNESS_H
#define FUZZ_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>

int luaopen_tls_core(lua_State *L);

static lua_State *fuzz_L;
static int fuzz_run_ref = LUA_NOREF;

/* The driver is called with (core, pki_dir) and returns run(data). */
static void fuzz_setup(const char *driver, const char *name)
{
	const char *pki = getenv("FUZZ_PKI");
	fuzz_L = luaL_newstate();
	luaL_openlibs(fuzz_L);
	luaL_requiref(fuzz_L, "tls.core", luaopen_tls_core, 0);
	if (luaL_loadbuffer(fuzz_L, driver, strlen(driver), name) != LUA_OK) {
		fprintf(stderr, "%s: %s\n", name, lua_tostring(fuzz_L, -1));
		abort();
	}
	lua_insert(fuzz_L, -2);
	lua_pushstring(fuzz_L, pki ? pki : "build/fuzz/pki");
	if (lua_pcall(fuzz_L, 2, 1, 0) != LUA_OK || !lua_isfunction(fuzz_L, -1)) {
		fprintf(stderr, "%s setup: %s (set FUZZ_PKI to a directory with "
		    "server.crt and server.key; `make fuzz-pki` makes one)\n",
		    name, lua_tostring(fuzz_L, -1));
		exit(2);
	}
	fuzz_run_ref = luaL_ref(fuzz_L, LUA_REGISTRYINDEX);
}

static int fuzz_one(const uint8_t *data, size_t size)
{
	lua_State *L = fuzz_L;
	lua_rawgeti(L, LUA_REGISTRYINDEX, fuzz_run_ref);
	lua_pushlstring(L, (const char *)data, size);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
		fprintf(stderr, "fuzz: Lua error escaped the module: %s\n",
		    lua_tostring(L, -1));
		abort();
	}
	lua_gc(L, LUA_GCCOLLECT);
	lua_gc(L, LUA_GCCOLLECT);
	return 0;
}

/* Lua helpers every driver uses: outcomes must be a known shape. */
#define FUZZ_LUA_PRELUDE \
	"local core, pki = ...\n" \
	"local function read(p) local f = assert(io.open(p, 'rb')) " \
	"  local s = f:read('a') f:close() return s end\n" \
	"local function want(err) return err == 'wantread' or err == 'wantwrite' end\n" \
	"local function check_err(err, what)\n" \
	"  if type(err) ~= 'string' or #err == 0 then\n" \
	"    error(what .. ': failure without a message: ' .. tostring(err)) end\n" \
	"end\n"

/* Feed data to engine e in chunks, pumping the handshake and reading any
 * application data; then end the input and close. */
#define FUZZ_LUA_PUMP \
	"local function pump(e, data)\n" \
	"  local chunk = 1 + (#data * 31) % 2048\n" \
	"  local pos, dead = 1, false\n" \
	"  while pos <= #data and not dead do\n" \
	"    local ok, err = e:feed(data:sub(pos, pos + chunk - 1))\n" \
	"    if not ok then check_err(err, 'feed') end\n" \
	"    pos = pos + chunk\n" \
	"    local hs, herr = e:handshake()\n" \
	"    if not hs then check_err(herr, 'handshake'); dead = not want(herr) end\n" \
	"    e:drain()\n" \
	"    if hs then\n" \
	"      local s, rerr = e:receive(64)\n" \
	"      if not s then check_err(rerr, 'receive'); dead = not want(rerr) end\n" \
	"      local n, serr = e:send('pong')\n" \
	"      if not n then check_err(serr, 'send') end\n" \
	"      e:drain()\n" \
	"    end\n" \
	"  end\n" \
	"  e:feed_eof()\n" \
	"  local hs, herr = e:handshake()\n" \
	"  if not hs then check_err(herr, 'handshake at eof') end\n" \
	"  local s, rerr = e:receive('*a')\n" \
	"  if not s then check_err(rerr, 'receive at eof') end\n" \
	"  e:drain()\n" \
	"  assert(e:close() == true)\n" \
	"  assert(e:close() == true)\n" \
	"  local s2, cerr = e:receive()\n" \
	"  assert(s2 == nil and cerr == 'closed')\n" \
	"end\n"

#endif
