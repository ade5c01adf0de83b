/*
 * tls.server: a configured libtls server context. Accepted connections keep
 * theirs alive through their uservalue (libtls's SNI callback reads it during
 * the handshake), so a listener can switch to a new one while old
 * connections finish on the old.
 */
#include "ltls.h"

/* core.server(config) -> server | nil, message */
int ltls_server_new(lua_State *L)
{
	ltls_config *cfg = ltls_checkconfig(L, 1);
	ltls_server *s = lua_newuserdatauv(L, sizeof(*s), 1);
	s->ctx = NULL;
	luaL_setmetatable(L, LTLS_SERVER);
	lua_pushvalue(L, 1);  /* its keypair list tells conns which one SNI chose */
	lua_setiuservalue(L, -2, 1);
	/* the allocation may have run a finalizer that closed the config */
	cfg = ltls_checkconfig(L, 1);
	if (!cfg->has_keypair) {
		lua_pushnil(L);
		lua_pushliteral(L, "server: the config has no certificate; "
		    "give cert_file and key_file (or keypairs)");
		return 2;
	}
	if ((s->ctx = tls_server()) == NULL)
		return luaL_error(L, "tls server: out of memory");
	if (tls_configure(s->ctx, cfg->cfg) != 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "server: %s", tls_error(s->ctx));
		tls_free(s->ctx);
		s->ctx = NULL;
		return 2;
	}
	return 1;
}

ltls_server *ltls_checkserver(lua_State *L, int idx)
{
	ltls_server *s = luaL_checkudata(L, idx, LTLS_SERVER);
	if (s->ctx == NULL)
		luaL_error(L, "attempt to use a freed tls server");
	return s;
}

/* server:engine() -> a server-side connection over memory */
static int server_engine(lua_State *L)
{
	ltls_server *s = ltls_checkserver(L, 1);
	ltls_conn *c = ltls_conn_alloc(L, 1, LTLS_SERVER_CONN);
	int r;
	if ((r = ltls_conn_start_server(L, c, s)) != 0)
		return r;
	return 1;
}

/* server:wrap(fd) -> a server-side connection that owns fd */
static int server_wrap(lua_State *L)
{
	ltls_server *s = ltls_checkserver(L, 1);
	lua_Integer fd = luaL_checkinteger(L, 2);
	ltls_conn *c;
	int r;
	luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 2, "not a descriptor");
	c = ltls_conn_alloc(L, 1, LTLS_SERVER_CONN);
	/* the descriptor is taken over only on success: a failure leaves it to
	 * the caller (a LuaSocket object still owns it then) */
	if ((r = ltls_conn_start_server(L, c, s)) != 0)
		return r;
	c->fd = (int)fd;
	return 1;
}

/* server:config() -> the tls.config it was configured with */
static int server_config(lua_State *L)
{
	luaL_checkudata(L, 1, LTLS_SERVER);
	lua_getiuservalue(L, 1, 1);
	return 1;
}

static int server_gc(lua_State *L)
{
	ltls_server *s = luaL_checkudata(L, 1, LTLS_SERVER);
	if (s->ctx != NULL) {
		tls_free(s->ctx);
		s->ctx = NULL;
	}
	return 0;
}

static int server_tostring(lua_State *L)
{
	lua_pushfstring(L, "tls.server: %p", lua_touserdata(L, 1));
	return 1;
}

void ltls_server_open(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__gc", server_gc },
		{ "__tostring", server_tostring },
		{ NULL, NULL }
	};
	static const luaL_Reg methods[] = {
		{ "engine", server_engine },
		{ "wrap", server_wrap },
		{ "config", server_config },
		{ NULL, NULL }
	};
	luaL_newmetatable(L, LTLS_SERVER);
	luaL_setfuncs(L, meta, 0);
	luaL_newlib(L, methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}
