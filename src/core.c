/*
 * tls.core: the C half of lua-tls. Only luaopen_tls_core is exported.
 */
#include "ltls.h"

#define LTLS_EXPORT __attribute__((visibility("default")))

static int core_version(lua_State *L)
{
	lua_pushinteger(L, TLS_API);
	return 1;
}

/* core.now() -> seconds on the monotonic clock, for Lua-side deadlines */
static int core_now(lua_State *L)
{
	lua_pushnumber(L, ltls_now());
	return 1;
}

LTLS_EXPORT int luaopen_tls_core(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{ "config", ltls_config_new },
		{ "server", ltls_server_new },
		{ "client", ltls_conn_client },
		{ "listen", ltls_listen },
		{ "api", core_version },
		{ "now", core_now },
		{ "replace_file", ltls_replace_file },
		{ "mkdir", ltls_mkdir },
		{ NULL, NULL }
	};
	if (tls_init() != 0)
		return luaL_error(L, "tls.core: libtls failed to initialise");
	ltls_config_open(L);
	ltls_server_open(L);
	ltls_conn_open(L);
	ltls_listener_open(L);
	luaL_newlib(L, funcs);
	lua_pushinteger(L, LTLS_RBUF_SIZE);
	lua_setfield(L, -2, "receive_buffer_size");
	lua_pushinteger(L, LTLS_MEM_LIMIT_DEFAULT);
	lua_setfield(L, -2, "engine_buffer_limit");
	return 1;
}
