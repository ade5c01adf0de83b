/*
 * lua-tls: the Lua 5.4 C API on Lua 5.1, LuaJIT 2.1, 5.2 and 5.3.
 *
 * The C core is written against 5.4; this header, included by ltls.h after
 * lua.h and lauxlib.h, supplies what an older API lacks, so the .c files
 * carry no version tests (the compat-5.3 approach, much smaller: only what
 * the core uses). Semantics follow 5.4 where the old API allows it:
 *   - uservalues: n slots live in a table set as the userdata's one
 *     uservalue (5.2, 5.3) or environment (5.1, LuaJIT);
 *   - integers: before 5.3 every number is a double, so an integer is a
 *     number with an integral value, and luaL_checkinteger refuses 2.5 as
 *     5.3+ does instead of truncating it;
 *   - luaL_Buffer: the 5.1 buffer is a fixed array of LUAL_BUFFERSIZE bytes
 *     with no luaL_prepbuffsize; ltls_compat_buffer grows in a userdata
 *     box held in the buffer's stack slot, as 5.4's does;
 *   - type names: metatables get __name and argument errors name the type
 *     they got, as on 5.3+;
 *   - __close: a metatable field that only 5.4 calls; harmless elsewhere.
 */
#ifndef LTLS_COMPAT_H
#define LTLS_COMPAT_H

#include <string.h>
#include <lua.h>
#include <lauxlib.h>

/* ---- Lua 5.1 and LuaJIT 2.1 (both LUA_VERSION_NUM 501) ---- */
#if LUA_VERSION_NUM == 501

#define lua_rawlen(L, i) lua_objlen(L, (i))
#define luaL_len(L, i) ((lua_Integer)lua_objlen(L, (i)))
#define lua_getuservalue(L, i) lua_getfenv(L, (i))
#define lua_setuservalue(L, i) lua_setfenv(L, (i))

static inline int lua_absindex(lua_State *L, int i)
{
	return (i > 0 || i <= LUA_REGISTRYINDEX) ? i : lua_gettop(L) + i + 1;
}

/* LuaJIT 2.1 has the 5.2 auxiliary functions (it defines luaL_newlibtable);
 * plain 5.1 has none of them. */
#ifndef luaL_newlibtable
static inline void luaL_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
	luaL_checkstack(L, nup + 1, "too many upvalues");
	for (; l->name != NULL; l++) {
		int i;
		for (i = 0; i < nup; i++)
			lua_pushvalue(L, -nup);
		lua_pushcclosure(L, l->func, nup);
		lua_setfield(L, -(nup + 2), l->name);
	}
	lua_pop(L, nup);
}

static inline void luaL_setmetatable(lua_State *L, const char *tname)
{
	luaL_getmetatable(L, tname);
	lua_setmetatable(L, -2);
}

static inline void *luaL_testudata(lua_State *L, int ud, const char *tname)
{
	void *p = lua_touserdata(L, ud);
	if (p != NULL && lua_getmetatable(L, ud)) {
		int same;
		luaL_getmetatable(L, tname);
		same = lua_rawequal(L, -1, -2);
		lua_pop(L, 2);
		if (same)
			return p;
	}
	return NULL;
}

#define luaL_newlibtable(L, l) \
	lua_createtable(L, 0, (int)(sizeof(l) / sizeof((l)[0]) - 1))
#define luaL_newlib(L, l) (luaL_newlibtable(L, l), luaL_setfuncs(L, l, 0))
#endif

/* A luaL_Buffer that grows (5.1's is a fixed array). Like 5.4's, it owns
 * one stack slot from buffinit to pushresult: a placeholder until the
 * bytes outgrow the array, then the userdata box that holds them. */
typedef struct ltls_compat_buffer {
	char *b;         /* the array below or the box's bytes */
	size_t size, n;  /* capacity, bytes used */
	lua_State *L;
	int slot;        /* stack index of the placeholder/box */
	char init[LUAL_BUFFERSIZE];
} ltls_compat_buffer;

#undef luaL_Buffer
#undef luaL_buffinit
#undef luaL_prepbuffsize
#undef luaL_prepbuffer
#undef luaL_addsize
#undef luaL_addchar
#undef luaL_addlstring
#undef luaL_addstring
#undef luaL_addvalue
#undef luaL_pushresult
#define luaL_Buffer ltls_compat_buffer
#define luaL_buffinit ltls_compat_buffinit
#define luaL_prepbuffsize ltls_compat_prepbuffsize
#define luaL_prepbuffer(B) ltls_compat_prepbuffsize((B), LUAL_BUFFERSIZE)
#define luaL_addsize(B, s) ((void)((B)->n += (s)))
#define luaL_addchar(B, c) \
	((void)((B)->n < (B)->size || ltls_compat_prepbuffsize((B), 1)), \
	 ((B)->b[(B)->n++] = (c)))
#define luaL_addlstring ltls_compat_addlstring
#define luaL_addstring(B, s) ltls_compat_addlstring((B), (s), strlen(s))
#define luaL_addvalue ltls_compat_addvalue
#define luaL_pushresult ltls_compat_pushresult

static inline void ltls_compat_buffinit(lua_State *L, ltls_compat_buffer *B)
{
	B->L = L;
	B->b = B->init;
	B->size = sizeof B->init;
	B->n = 0;
	lua_pushnil(L);  /* the slot the box takes if the bytes outgrow init */
	B->slot = lua_gettop(L);
}

/* Room for sz more bytes; the box is a new, larger userdata each time
 * (5.1 cannot resize one), replacing the old in the buffer's slot. */
static inline char *ltls_compat_prepbuffsize(ltls_compat_buffer *B, size_t sz)
{
	if (B->size - B->n < sz) {
		size_t newsize = B->size * 2;
		char *nb;
		if (B->n + sz < B->n)  /* size_t overflow */
			luaL_error(B->L, "buffer too large");
		if (newsize < B->n + sz)
			newsize = B->n + sz;
		nb = (char *)lua_newuserdata(B->L, newsize);
		memcpy(nb, B->b, B->n);
		lua_replace(B->L, B->slot);
		B->b = nb;
		B->size = newsize;
	}
	return B->b + B->n;
}

static inline void ltls_compat_addlstring(ltls_compat_buffer *B, const char *s, size_t l)
{
	if (l > 0) {
		memcpy(ltls_compat_prepbuffsize(B, l), s, l);
		B->n += l;
	}
}

/* Adds the string or number on the top of the stack (above the buffer's
 * slot) and pops it; it stays anchored there while it is copied. */
static inline void ltls_compat_addvalue(ltls_compat_buffer *B)
{
	size_t l;
	const char *s = lua_tolstring(B->L, -1, &l);
	if (l > 0) {
		memcpy(ltls_compat_prepbuffsize(B, l), s, l);
		B->n += l;
	}
	lua_pop(B->L, 1);
}

static inline void ltls_compat_pushresult(ltls_compat_buffer *B)
{
	lua_pushlstring(B->L, B->b, B->n);
	lua_remove(B->L, B->slot);
}

#define luaL_bufflen(B) ((B)->n)
#define luaL_buffinitsize(L, B, sz) \
	(ltls_compat_buffinit((L), (B)), ltls_compat_prepbuffsize((B), (sz)))
#define luaL_pushresultsize(B, sz) \
	(luaL_addsize((B), (sz)), ltls_compat_pushresult(B))

/* 5.2's luaL_tolstring: __tostring, else the value as tostring() shows it. */
static inline const char *luaL_tolstring(lua_State *L, int idx, size_t *len)
{
	if (luaL_callmeta(L, idx, "__tostring")) {
		if (!lua_isstring(L, -1))
			luaL_error(L, "'__tostring' must return a string");
	} else {
		switch (lua_type(L, idx)) {
		case LUA_TNUMBER:
		case LUA_TSTRING:
			lua_pushvalue(L, idx);
			break;
		case LUA_TBOOLEAN:
			lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
			break;
		case LUA_TNIL:
			lua_pushliteral(L, "nil");
			break;
		default:
			lua_pushfstring(L, "%s: %p", luaL_typename(L, idx), lua_topointer(L, idx));
			break;
		}
	}
	return lua_tolstring(L, -1, len);
}

#endif /* 501 */

/* ---- Lua 5.2 ---- */
#if LUA_VERSION_NUM == 502

/* 5.3+ run the collector's step after lua_pushlstring has made the string,
 * 5.2 before it. There a step can end a cycle that frees every large
 * string read since the last one, the newest included, at the top of the
 * malloc heap: glibc merges them into its top chunk, returns that to the
 * kernel past its trim threshold, and the next strings fault it back in,
 * page by page (doc/performance.md, "versions"). Pushing the empty string
 * (interned: nothing new to allocate) runs the step again with the new
 * string on the stack, where 5.3+ run it; a step may run a finalizer, as
 * the push itself may. */
static inline const char *ltls_compat_pushlstring(lua_State *L, const char *s, size_t len)
{
	const char *p = (lua_pushlstring)(L, s, len);
	if (lua_checkstack(L, 1)) {
		(lua_pushlstring)(L, "", 0);
		lua_pop(L, 1);
	}
	return p;
}

#define lua_pushlstring ltls_compat_pushlstring

#endif /* 502 */

/* ---- Lua 5.1, LuaJIT, 5.2 ---- */
#if LUA_VERSION_NUM < 503

/* lua_pushlstring runs the collector's step (and so any finalizer) before
 * it copies the bytes; 5.3+ copy first. A push from memory a finalizer can
 * free (a conn's buffers) copies it somewhere safe first where this is 1. */
#define LTLS_PUSH_STEPS_FIRST 1

/* n as a lua_Integer in *i, if n has an integral value that fits. */
static inline int ltls_compat_num2int(lua_Number n, lua_Integer *i)
{
	/* 2^(bits-1), exact as a double */
	const lua_Number lim = (lua_Number)((lua_Integer)1 << (sizeof(lua_Integer) * 8 - 2)) * 2;
	if (!(n >= -lim && n < lim))  /* also NaN */
		return 0;
	*i = (lua_Integer)n;
	return (lua_Number)*i == n;
}

static inline int lua_isinteger(lua_State *L, int idx)
{
	lua_Integer i;
	return lua_type(L, idx) == LUA_TNUMBER && ltls_compat_num2int(lua_tonumber(L, idx), &i);
}

/* 5.3's lua_tointeger: 0 for a number without an exact integer value
 * (5.1 and 5.2 truncate it). */
static inline lua_Integer ltls_compat_tointeger(lua_State *L, int idx)
{
	lua_Integer i;
	return ltls_compat_num2int(lua_tonumber(L, idx), &i) ? i : 0;
}

/* 5.3's rule: a float argument must have an exact integer value. */
static inline lua_Integer ltls_compat_checkinteger(lua_State *L, int arg)
{
	lua_Integer i = 0;  /* luaL_argerror does not return */
	if (!ltls_compat_num2int(luaL_checknumber(L, arg), &i))
		luaL_argerror(L, arg, "number has no integer representation");
	return i;
}

static inline lua_Integer ltls_compat_optinteger(lua_State *L, int arg, lua_Integer def)
{
	return lua_isnoneornil(L, arg) ? def : ltls_compat_checkinteger(L, arg);
}

#undef lua_tointeger
#undef luaL_checkinteger
#undef luaL_optinteger
#define lua_tointeger ltls_compat_tointeger
#define luaL_checkinteger ltls_compat_checkinteger
#define luaL_optinteger ltls_compat_optinteger

/* 5.3's type names: a metatable records its registry name in __name, and a
 * wrong argument is reported as "tls.conn expected, got tls.config". */
static inline int ltls_compat_newmetatable(lua_State *L, const char *tname)
{
	if (!luaL_newmetatable(L, tname))
		return 0;
	lua_pushstring(L, tname);
	lua_setfield(L, -2, "__name");
	return 1;
}

static inline void *ltls_compat_checkudata(lua_State *L, int arg, const char *tname)
{
	void *p = lua_touserdata(L, arg);
	const char *got;
	if (p != NULL && lua_getmetatable(L, arg)) {
		int same;
		luaL_getmetatable(L, tname);
		same = lua_rawequal(L, -1, -2);
		lua_pop(L, 2);
		if (same)
			return p;
	}
	if (luaL_getmetafield(L, arg, "__name") && lua_type(L, -1) == LUA_TSTRING)
		got = lua_tostring(L, -1);
	else if (lua_type(L, arg) == LUA_TLIGHTUSERDATA)
		got = "light userdata";
	else
		got = luaL_typename(L, arg);
	luaL_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s", tname, got));
	return NULL;
}

#undef luaL_newmetatable
#undef luaL_checkudata
#define luaL_newmetatable ltls_compat_newmetatable
#define luaL_checkudata ltls_compat_checkudata

static inline int lua_geti(lua_State *L, int idx, lua_Integer n)
{
	idx = lua_absindex(L, idx);
	lua_pushinteger(L, n);
	lua_gettable(L, idx);
	return lua_type(L, -1);
}

/* Rotates the elements from idx to the top n positions towards the top
 * (n < 0: towards idx). */
static inline void lua_rotate(lua_State *L, int idx, int n)
{
	idx = lua_absindex(L, idx);
	for (; n > 0; n--)
		lua_insert(L, idx);
	for (; n < 0; n++) {
		lua_pushvalue(L, idx);
		lua_remove(L, idx);
	}
}

#endif /* < 503 */

/* ---- everything before 5.4: n uservalues in one table ---- */
#if LUA_VERSION_NUM < 504

#ifndef luaL_bufflen
#define luaL_bufflen(B) ((B)->n)
#endif

static inline void *lua_newuserdatauv(lua_State *L, size_t sz, int nuvalue)
{
	void *p = lua_newuserdata(L, sz);
	if (nuvalue > 0) {
		lua_createtable(L, nuvalue, 0);
		lua_setuservalue(L, -2);
	}
	return p;
}

/* Pushes uservalue n (nil if there is none) and returns its type. */
static inline int lua_getiuservalue(lua_State *L, int idx, int n)
{
	lua_getuservalue(L, idx);
	if (lua_type(L, -1) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_pushnil(L);
		return LUA_TNONE;
	}
	lua_rawgeti(L, -1, n);
	lua_remove(L, -2);
	return lua_type(L, -1);
}

/* Pops a value into uservalue n; 0 when the userdata has no slots. */
static inline int lua_setiuservalue(lua_State *L, int idx, int n)
{
	idx = lua_absindex(L, idx);
	lua_getuservalue(L, idx);
	if (lua_type(L, -1) != LUA_TTABLE) {
		lua_pop(L, 2);
		return 0;
	}
	lua_insert(L, -2);
	lua_rawseti(L, -2, n);
	lua_pop(L, 1);
	return 1;
}

#endif /* < 504 */

#ifndef LTLS_PUSH_STEPS_FIRST
#define LTLS_PUSH_STEPS_FIRST 0
#endif

#endif
