/*
 * What a finished handshake tells: the negotiated parameters (info) and the
 * peer's certificate (peer), as fresh tables.
 *
 * Each push allocates through Lua and so can run any __gc, including one
 * that closes this conn and frees its context: the context is read afresh
 * (and found gone) after every push, through ctx_or_closed.
 */
#include <string.h>

#include "ltls.h"

/* The conn's context, or NULL once it was closed; then nil, "closed" is
 * pushed (above the half-built table) as the method's two results. */
static struct tls *ctx_or_closed(lua_State *L, ltls_conn *c)
{
	if (c->ctx == NULL) {
		lua_pushnil(L);
		lua_pushliteral(L, "closed");
	}
	return c->ctx;
}

#define CTX(L, c) do { if ((ctx = ctx_or_closed(L, c)) == NULL) return 2; } while (0)

/* t[key] = value, a string the context holds: 0, or -1 when the conn was
 * closed meanwhile. 5.3+ copy it before the push can run a finalizer;
 * older Luas run it first (LTLS_PUSH_STEPS_FIRST), and one that closes the
 * conn frees value: there it goes to a box first, the context checked once
 * the box is made. */
static int set_lstring(lua_State *L, ltls_conn *c, const char *key, const char *value,
    size_t len)
{
	if (value == NULL)
		return 0;
	if (LTLS_PUSH_STEPS_FIRST) {
		char *box = lua_newuserdata(L, len > 0 ? len : 1);
		if (c->ctx == NULL) {
			lua_pop(L, 1);
			return -1;
		}
		memcpy(box, value, len);
		lua_pushlstring(L, box, len);
		lua_setfield(L, -3, key);
		lua_pop(L, 1);
		return 0;
	}
	lua_pushlstring(L, value, len);
	lua_setfield(L, -2, key);
	return 0;
}

#define SET_STRING(L, c, key, value) do { \
	const char *v_ = (value); \
	if (set_lstring(L, c, key, v_, v_ != NULL ? strlen(v_) : 0) != 0) { \
		(void)ctx_or_closed(L, c); \
		return 2; \
	} \
} while (0)

static void set_integer(lua_State *L, const char *key, lua_Integer value)
{
	lua_pushinteger(L, value);
	lua_setfield(L, -2, key);
}

/* {version, cipher, cipher_strength, alpn, servername, resumed} */
int ltls_push_info(lua_State *L, ltls_conn *c)
{
	struct tls *ctx;
	lua_createtable(L, 0, 6);
	CTX(L, c);
	SET_STRING(L, c, "version", tls_conn_version(ctx));
	CTX(L, c);
	SET_STRING(L, c, "cipher", tls_conn_cipher(ctx));
	CTX(L, c);
	set_integer(L, "cipher_strength", tls_conn_cipher_strength(ctx));
	CTX(L, c);
	SET_STRING(L, c, "alpn", tls_conn_alpn_selected(ctx));
	CTX(L, c);
	SET_STRING(L, c, "servername", tls_conn_servername(ctx));
	CTX(L, c);
	lua_pushboolean(L, tls_conn_session_resumed(ctx) == 1);
	lua_setfield(L, -2, "resumed");
	return 1;
}

/* {subject, issuer, hash, notbefore, notafter, chain_pem, ocsp} or nil */
int ltls_push_peer(lua_State *L, ltls_conn *c)
{
	struct tls *ctx = c->ctx;
	const uint8_t *pem;
	size_t len = 0;
	if (!tls_peer_cert_provided(ctx)) {
		lua_pushnil(L);
		return 1;
	}
	lua_createtable(L, 0, 8);
	CTX(L, c);
	SET_STRING(L, c, "subject", tls_peer_cert_subject(ctx));
	CTX(L, c);
	SET_STRING(L, c, "issuer", tls_peer_cert_issuer(ctx));
	CTX(L, c);
	SET_STRING(L, c, "hash", tls_peer_cert_hash(ctx));
	CTX(L, c);
	set_integer(L, "notbefore", (lua_Integer)tls_peer_cert_notbefore(ctx));
	CTX(L, c);
	set_integer(L, "notafter", (lua_Integer)tls_peer_cert_notafter(ctx));
	CTX(L, c);
	if ((pem = tls_peer_cert_chain_pem(ctx, &len)) != NULL &&
	    set_lstring(L, c, "chain_pem", (const char *)pem, len) != 0) {
		(void)ctx_or_closed(L, c);
		return 2;
	}
	/* OCSP: present only when the peer stapled a response */
	CTX(L, c);
	if (tls_peer_ocsp_response_status(ctx) >= 0) {
		lua_createtable(L, 0, 4);
		CTX(L, c);
		SET_STRING(L, c, "result", tls_peer_ocsp_result(ctx));
		CTX(L, c);
		set_integer(L, "cert_status", tls_peer_ocsp_cert_status(ctx));
		CTX(L, c);
		set_integer(L, "next_update", (lua_Integer)tls_peer_ocsp_next_update(ctx));
		CTX(L, c);
		set_integer(L, "this_update", (lua_Integer)tls_peer_ocsp_this_update(ctx));
		lua_setfield(L, -2, "ocsp");
	}
	return 1;
}
