/*
 * tls.core: the C half of lua-tls. Only luaopen_tls_core is exported.
 */
#include "ltls.h"

#include <string.h>

#include <openssl/crypto.h>

#define LTLS_EXPORT __attribute__((visibility("default")))

static int core_version(lua_State *L)
{
	lua_pushinteger(L, TLS_API);
	return 1;
}

/*
 * core.library = { name = "LibreSSL" | "LibreTLS", version = "x.y.z" (LibreSSL's),
 * crypto = the libcrypto actually loaded }: which libtls this module was built
 * for (the headers say it) and which libcrypto runs under it (asked at run time,
 * so a wrong rpath shows). Specs branch on the name where the libraries differ.
 */
static void push_library(lua_State *L)
{
	const char *crypto = OpenSSL_version(OPENSSL_VERSION);
	lua_createtable(L, 0, 3);
#ifdef LIBRESSL_VERSION_NUMBER
	lua_pushliteral(L, "LibreSSL");
	lua_setfield(L, -2, "name");
	if (strncmp(crypto, "LibreSSL ", 9) == 0) {
		lua_pushstring(L, crypto + 9);
		lua_setfield(L, -2, "version");
	}
#else
	/* libtls on OpenSSL: LibreTLS, whose headers carry no version of their own */
	lua_pushliteral(L, "LibreTLS");
	lua_setfield(L, -2, "name");
#endif
	lua_pushstring(L, crypto);
	lua_setfield(L, -2, "crypto");
}

/* core.timeout_problem(t) -> nil for a good timeout value, else what is
 * wrong with it: the Lua layer's option checks use the C rule. */
static int core_timeout_problem(lua_State *L)
{
	const char *why = ltls_timeout_problem(L, 1);
	if (why == NULL)
		lua_pushnil(L);
	else
		lua_pushstring(L, why);
	return 1;
}

/* core.type(v) -> the type name of one of the core's objects ("tls.config",
 * "tls.server", "tls.conn", "tls.listen_socket"), or nil: what Lua checks
 * instead of comparing metatables out of the registry. */
static int core_type(lua_State *L)
{
	static const char *const names[] = { LTLS_CONFIG, LTLS_SERVER, LTLS_CONN, LTLS_LISTENER, NULL };
	const char *const *n;
	for (n = names; *n != NULL; n++)
		if (luaL_testudata(L, 1, *n) != NULL) {
			lua_pushstring(L, *n);
			return 1;
		}
	lua_pushnil(L);
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
		{ "file_stamp", ltls_file_stamp },
		{ "timeout_problem", core_timeout_problem },
		{ "type", core_type },
		{ "interpose", ltls_conn_interpose },
		{ NULL, NULL }
	};
	if (tls_init() != 0)
#ifdef LIBRESSL_VERSION_NUMBER
		/* LibreSSL's libtls binds to the first libssl/libcrypto symbols of
		 * the process: in a host that loaded OpenSSL (nginx, HAProxy) those
		 * are OpenSSL's, and libtls cannot start on them */
		return luaL_error(L, "tls.core: libtls failed to initialise (this build is "
		    "for LibreSSL; a process that already loaded OpenSSL's libssl, as "
		    "nginx and HAProxy do, cannot use it: build the module on that "
		    "OpenSSL's libtls, LibreTLS)");
#else
		return luaL_error(L, "tls.core: libtls failed to initialise");
#endif
	ltls_config_open(L);
	ltls_server_open(L);
	ltls_conn_open(L);
	ltls_listener_open(L);
	luaL_newlib(L, funcs);
	ltls_x509_open(L);
	ltls_base64_open(L);
	lua_pushinteger(L, LTLS_RBUF_SIZE);
	lua_setfield(L, -2, "receive_buffer_size");
	lua_pushinteger(L, LTLS_MEM_LIMIT_DEFAULT);
	lua_setfield(L, -2, "engine_buffer_limit");
	push_library(L);
	lua_setfield(L, -2, "library");
	lua_pushboolean(L, LTLS_PORTABLE_BUILD);  /* built with make PORTABLE=1 */
	lua_setfield(L, -2, "portable");
	return 1;
}
