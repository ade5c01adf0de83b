/*
 * What a finished handshake tells: the negotiated parameters (info) and the
 * peer's certificate (peer), as fresh tables.
 *
 * Each push allocates through Lua and so can run any __gc, including one
 * that closes this conn and frees its context: the context is read afresh
 * (and found gone) after every push, through ctx_or_closed.
 */
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

static void set_string(lua_State *L, const char *key, const char *value)
{
	if (value != NULL) {
		lua_pushstring(L, value);  /* copied before any collection step */
		lua_setfield(L, -2, key);
	}
}

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
	set_string(L, "version", tls_conn_version(ctx));
	CTX(L, c);
	set_string(L, "cipher", tls_conn_cipher(ctx));
	CTX(L, c);
	set_integer(L, "cipher_strength", tls_conn_cipher_strength(ctx));
	CTX(L, c);
	set_string(L, "alpn", tls_conn_alpn_selected(ctx));
	CTX(L, c);
	set_string(L, "servername", tls_conn_servername(ctx));
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
	set_string(L, "subject", tls_peer_cert_subject(ctx));
	CTX(L, c);
	set_string(L, "issuer", tls_peer_cert_issuer(ctx));
	CTX(L, c);
	set_string(L, "hash", tls_peer_cert_hash(ctx));
	CTX(L, c);
	set_integer(L, "notbefore", (lua_Integer)tls_peer_cert_notbefore(ctx));
	CTX(L, c);
	set_integer(L, "notafter", (lua_Integer)tls_peer_cert_notafter(ctx));
	CTX(L, c);
	if ((pem = tls_peer_cert_chain_pem(ctx, &len)) != NULL) {
		lua_pushlstring(L, (const char *)pem, len);
		lua_setfield(L, -2, "chain_pem");
	}
	/* OCSP: present only when the peer stapled a response */
	CTX(L, c);
	if (tls_peer_ocsp_response_status(ctx) >= 0) {
		lua_createtable(L, 0, 4);
		CTX(L, c);
		set_string(L, "result", tls_peer_ocsp_result(ctx));
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
