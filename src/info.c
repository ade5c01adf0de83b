/*
 * What a finished handshake tells: the negotiated parameters (info) and the
 * peer's certificate (peer), as fresh tables.
 */
#include "ltls.h"

static void set_string(lua_State *L, const char *key, const char *value)
{
	if (value != NULL) {
		lua_pushstring(L, value);
		lua_setfield(L, -2, key);
	}
}

/* {version, cipher, cipher_strength, alpn, servername, resumed} */
int ltls_push_info(lua_State *L, struct tls *ctx)
{
	lua_createtable(L, 0, 6);
	set_string(L, "version", tls_conn_version(ctx));
	set_string(L, "cipher", tls_conn_cipher(ctx));
	lua_pushinteger(L, tls_conn_cipher_strength(ctx));
	lua_setfield(L, -2, "cipher_strength");
	set_string(L, "alpn", tls_conn_alpn_selected(ctx));
	set_string(L, "servername", tls_conn_servername(ctx));
	lua_pushboolean(L, tls_conn_session_resumed(ctx) == 1);
	lua_setfield(L, -2, "resumed");
	return 1;
}

/* {subject, issuer, hash, notbefore, notafter, chain_pem} or nil */
int ltls_push_peer(lua_State *L, struct tls *ctx)
{
	const uint8_t *pem;
	size_t len = 0;
	if (!tls_peer_cert_provided(ctx)) {
		lua_pushnil(L);
		return 1;
	}
	lua_createtable(L, 0, 8);
	set_string(L, "subject", tls_peer_cert_subject(ctx));
	set_string(L, "issuer", tls_peer_cert_issuer(ctx));
	set_string(L, "hash", tls_peer_cert_hash(ctx));
	lua_pushinteger(L, (lua_Integer)tls_peer_cert_notbefore(ctx));
	lua_setfield(L, -2, "notbefore");
	lua_pushinteger(L, (lua_Integer)tls_peer_cert_notafter(ctx));
	lua_setfield(L, -2, "notafter");
	if ((pem = tls_peer_cert_chain_pem(ctx, &len)) != NULL) {
		lua_pushlstring(L, (const char *)pem, len);
		lua_setfield(L, -2, "chain_pem");
	}
	/* OCSP: present only when the peer stapled a response */
	if (tls_peer_ocsp_response_status(ctx) >= 0) {
		lua_createtable(L, 0, 4);
		set_string(L, "result", tls_peer_ocsp_result(ctx));
		lua_pushinteger(L, tls_peer_ocsp_cert_status(ctx));
		lua_setfield(L, -2, "cert_status");
		lua_pushinteger(L, (lua_Integer)tls_peer_ocsp_next_update(ctx));
		lua_setfield(L, -2, "next_update");
		lua_pushinteger(L, (lua_Integer)tls_peer_ocsp_this_update(ctx));
		lua_setfield(L, -2, "this_update");
		lua_setfield(L, -2, "ocsp");
	}
	return 1;
}
