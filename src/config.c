/*
 * tls.config: a reusable libtls configuration built from a Lua table.
 *
 * Misuse (an unknown option, a wrong type) raises; failures of the world
 * (a file that can't be read, a key that doesn't match its certificate)
 * return nil and a message that names the option and the file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <openssl/opensslv.h>

#include "ltls.h"

/* verify_depth counts the intermediates allowed, as OpenSSL's verify depth
 * does; LibreSSL's depth also counts the leaf (depth 1: no intermediate). */
#ifdef LIBRESSL_VERSION_NUMBER
#define VERIFY_DEPTH_EXTRA 1
#else
#define VERIFY_DEPTH_EXTRA 0
#endif

#ifndef LTLS_DEFAULT_CA_PATH
#define LTLS_DEFAULT_CA_PATH "/etc/ssl/certs"
#endif
/* AEAD with forward secrecy only; TLS 1.3 suites are all AEAD already.
 * libtls's own "secure"/"default" aliases still allow CBC and static RSA. */
#define LTLS_DEFAULT_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"
/* Appended to a user's list: it can only choose among AEAD suites with an
 * ephemeral key exchange (CBC suites are the ones MAC'd with SHA1/SHA2). */
#define LTLS_CIPHER_FLOOR ":!kRSA:!kDH:!kECDH:!aNULL:!eNULL:!PSK:!SRP:!DSS" \
	":!MD5:!SHA1:!SHA256:!SHA384"

/* Stack slot of the config userdata while core.config builds it. */
#define LTLS_CONFIG_SLOT 2

enum { T_STRING, T_INT, T_BOOL, T_LIST, T_KEYPAIRS, T_VERIFYCLIENT };

/* The setters of the options table (defined below). */
typedef int (*setter)(lua_State *L, ltls_config *c, int t);
static int set_protocols(lua_State *L, ltls_config *c, int t);
static int set_trust(lua_State *L, ltls_config *c, int t);
static int set_ciphers(lua_State *L, ltls_config *c, int t);
static int set_ecdhecurves(lua_State *L, ltls_config *c, int t);
static int set_alpn(lua_State *L, ltls_config *c, int t);
static int set_keypairs(lua_State *L, ltls_config *c, int t);
static int check_staple_owner(lua_State *L, ltls_config *c, int t);
static int set_verify_depth(lua_State *L, ltls_config *c, int t);
static int set_verify_client(lua_State *L, ltls_config *c, int t);
static int set_crl(lua_State *L, ltls_config *c, int t);
static int set_ocsp_require_stapling(lua_State *L, ltls_config *c, int t);
static int set_session_lifetime(lua_State *L, ltls_config *c, int t);
static int set_ticket_keys(lua_State *L, ltls_config *c, int t);
static int set_session_file(lua_State *L, ltls_config *c, int t);
static int set_session_id(lua_State *L, ltls_config *c, int t);
static int set_noverifycert(lua_State *L, ltls_config *c, int t);
static int set_noverifyname(lua_State *L, ltls_config *c, int t);
static int set_noverifytime(lua_State *L, ltls_config *c, int t);

/* Every option: its name, its type, and the setter that applies it.
 * Options applied together (the trust options, a keypair's parts) carry
 * the setter on their first entry only. apply() runs the setters in this
 * order: the keypairs come after the trust options and before the
 * top-level staple check. */
static const struct option {
	const char *name;
	int type;
	setter set;
} options[] = {
	{ "protocols", T_STRING, set_protocols },
	{ "ca_file", T_STRING, set_trust }, { "ca_path", T_STRING, NULL }, { "ca", T_STRING, NULL },
	{ "ciphers", T_STRING, set_ciphers },
	{ "ecdhecurves", T_STRING, set_ecdhecurves },
	{ "alpn", T_LIST, set_alpn },
	{ "cert_file", T_STRING, set_keypairs }, { "key_file", T_STRING, NULL },
	{ "cert", T_STRING, NULL }, { "key", T_STRING, NULL }, { "key_password", T_STRING, NULL },
	{ "keypairs", T_KEYPAIRS, NULL },
	{ "ocsp_staple_file", T_STRING, check_staple_owner }, { "ocsp_staple", T_STRING, NULL },
	{ "verify_depth", T_INT, set_verify_depth },
	{ "verify_client", T_VERIFYCLIENT, set_verify_client },
	{ "crl_file", T_STRING, set_crl }, { "crl", T_STRING, NULL },
	{ "ocsp_require_stapling", T_BOOL, set_ocsp_require_stapling },
	{ "session_lifetime", T_INT, set_session_lifetime },
	{ "ticket_keys", T_LIST, set_ticket_keys },
	{ "session_file", T_STRING, set_session_file },
	{ "session_id", T_STRING, set_session_id },
	{ "insecure_noverifycert", T_BOOL, set_noverifycert },
	{ "insecure_noverifyname", T_BOOL, set_noverifyname },
	{ "insecure_noverifytime", T_BOOL, set_noverifytime },
	{ NULL, 0, NULL }
};

static const char *const type_names[] = {
	"a string", "an integer", "a boolean", "a list", "a list of keypairs",
	"true, false or \"optional\""
};

/* A number with an integral value: 5.3+'s 2.0 as well as 2, as 5.1 sees
 * them (lua_tointeger converts both exactly). */
static int integral(lua_State *L, int idx)
{
	lua_Number x;
	if (lua_isinteger(L, idx))
		return 1;
	if (lua_type(L, idx) != LUA_TNUMBER)
		return 0;
	x = lua_tonumber(L, idx);
	return x >= -9007199254740992.0 && x <= 9007199254740992.0 && x == (lua_Number)(lua_Integer)x;
}

static int type_ok(lua_State *L, int idx, int type)
{
	switch (type) {
	case T_STRING: return lua_type(L, idx) == LUA_TSTRING;
	case T_INT: return integral(L, idx);
	case T_BOOL: return lua_isboolean(L, idx);
	case T_LIST: case T_KEYPAIRS: return lua_istable(L, idx);
	case T_VERIFYCLIENT:
		return lua_isboolean(L, idx) || (lua_type(L, idx) == LUA_TSTRING &&
		    strcmp(lua_tostring(L, idx), "optional") == 0);
	}
	return 0;
}

/* The keys a keypairs[] entry takes, all strings. */
static const char *const keypair_options[] = {
	"cert_file", "key_file", "cert", "key", "key_password",
	"ocsp_staple_file", "ocsp_staple", NULL
};

static void check_keypair_entries(lua_State *L, int list)
{
	lua_Integer i, n = luaL_len(L, list);
	for (i = 1; i <= n; i++) {
		lua_geti(L, list, i);
		if (!lua_istable(L, -1))
			luaL_error(L, "tls.config: keypairs[%d] must be a table, got %s",
			    (int)i, luaL_typename(L, -1));
		lua_pushnil(L);
		while (lua_next(L, -2) != 0) {
			const char *const *k;
			const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
			for (k = keypair_options; name != NULL && *k != NULL; k++)
				if (strcmp(*k, name) == 0)
					break;
			if (name == NULL || *k == NULL)
				luaL_error(L, "tls.config: keypairs[%d]: unknown option '%s' (an entry "
				    "takes cert_file/cert, key_file/key, key_password, "
				    "ocsp_staple_file/ocsp_staple)", (int)i,
				    name ? name : luaL_typename(L, -2));
			if (lua_type(L, -1) != LUA_TSTRING)
				luaL_error(L, "tls.config: keypairs[%d]: option '%s' must be a string, "
				    "got %s", (int)i, name, luaL_typename(L, -1));
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
}

/* LuaSec's option names (ssl.newcontext), and what lua-tls calls them. */
static const char *const luasec_names[][2] = {
	{ "cafile", "lua-tls calls it ca_file" }, { "capath", "lua-tls calls it ca_path" },
	{ "certificate", "lua-tls calls it cert_file" },
	{ "password", "lua-tls calls it key_password" },
	{ "protocol", "lua-tls calls it protocols" },
	{ "depth", "lua-tls calls it verify_depth" },
	{ "curve", "lua-tls calls it ecdhecurves" }, { "curveslist", "lua-tls calls it ecdhecurves" },
	{ "verify", "lua-tls calls it verify_client on a server; a client always verifies "
	    "unless insecure_noverifycert is set" },
	{ "options", "lua-tls needs none: its defaults already exclude what LuaSec's options exclude" },
	{ "dhparam", "lua-tls needs none: it offers no DHE suites" },
	{ "ciphersuites", "lua-tls needs none: every TLS 1.3 suite is AEAD and all are offered" },
	{ NULL, NULL }
};

/* Levenshtein distance of a and b, or a large number for long names. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, row[64];
	if (la >= 64 || lb >= 64)
		return (size_t)-1;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0], up;
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t best = diag + (a[i - 1] != b[j - 1]);
			up = row[j];
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

/* Options of tls.connect/wrap/listen/engine that never reach a config (the
 * conn_options of lua/tls/init.lua): known names to suggest for a typo. */
static const char *const conn_option_names[] = {
	"config", "servername", "timeout", "mode", "policy", "handshake_timeout",
	"backlog", "buffer_limit", "connect_timeout", NULL
};

/* Raise for an unknown option, naming what lua-tls calls it (LuaSec's
 * names) or the closest known option when one is close (an edit distance of
 * at most a third of the name, and at least 2). */
static void unknown_option(lua_State *L, const char *name)
{
	const struct option *o;
	const char *best = NULL;
	size_t i, d, bestd = (size_t)-1, limit = strlen(name) / 3;
	for (i = 0; luasec_names[i][0] != NULL; i++)
		if (strcmp(luasec_names[i][0], name) == 0)
			luaL_error(L, "tls.config: unknown option '%s' (%s)", name, luasec_names[i][1]);
	for (o = options; o->name != NULL; o++)
		if ((d = distance(name, o->name)) < bestd) {
			bestd = d;
			best = o->name;
		}
	for (i = 0; conn_option_names[i] != NULL; i++)
		if ((d = distance(name, conn_option_names[i])) < bestd) {
			bestd = d;
			best = conn_option_names[i];
		}
	if (best != NULL && bestd <= (limit < 2 ? 2 : limit))
		luaL_error(L, "tls.config: unknown option '%s' (the closest known option is '%s')",
		    name, best);
	luaL_error(L, "tls.config: unknown option '%s' (no known option is close: see doc/config.md)",
	    name);
}

/* Raise on any key this file does not know, or a value of the wrong type. */
static void check_options(lua_State *L, int t)
{
	lua_pushnil(L);
	while (lua_next(L, t) != 0) {
		const struct option *o;
		if (lua_type(L, -2) != LUA_TSTRING)
			luaL_error(L, "tls.config: option names must be strings, got %s",
			    luaL_typename(L, -2));
		for (o = options; o->name != NULL; o++)
			if (strcmp(o->name, lua_tostring(L, -2)) == 0)
				break;
		if (o->name == NULL)
			unknown_option(L, lua_tostring(L, -2));
		if (!type_ok(L, -1, o->type))
			luaL_error(L, "tls.config: option '%s' must be %s, got %s",
			    o->name, type_names[o->type], luaL_typename(L, -1));
		if (o->type == T_KEYPAIRS)
			check_keypair_entries(L, lua_gettop(L));
		lua_pop(L, 1);
	}
}

static const char *opt_string(lua_State *L, int t, const char *name, size_t *len)
{
	const char *s = NULL;
	lua_getfield(L, t, name);
	if (lua_type(L, -1) == LUA_TSTRING)
		s = lua_tolstring(L, -1, len);
	lua_pop(L, 1);  /* the string stays alive in the options table */
	return s;
}

static int opt_bool(lua_State *L, int t, const char *name)
{
	int b;
	lua_getfield(L, t, name);
	b = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return b;
}

/* PEM bytes for one item: from `file_opt` (read through libtls, which can
 * decrypt keys) or the in-memory `mem_opt`. *owned tells whether to unload. */
typedef struct pem {
	uint8_t *data;
	size_t len;
	int owned;               /* 1: tls_load_file's, 2: malloc'd */
	const char *file;
} pem;

static int load_pem(lua_State *L, int t, const char *file_opt, const char *mem_opt,
    const char *password, pem *p)
{
	size_t len = 0;
	const char *file = opt_string(L, t, file_opt, NULL);
	const char *mem = opt_string(L, t, mem_opt, &len);
	memset(p, 0, sizeof(*p));
	if (file != NULL && mem != NULL) {
		lua_pushfstring(L, "%s: give either %s or %s, not both", file_opt, file_opt, mem_opt);
		return -1;
	}
	if (file != NULL) {
		errno = 0;
		p->data = tls_load_file(file, &p->len, (char *)password);
		if (p->data == NULL) {
			lua_pushfstring(L, "%s: cannot read '%s': %s%s", file_opt, file,
			    errno ? strerror(errno) : "could not load it",
			    password ? " (or the key_password is wrong)" : "");
			return -1;
		}
		p->owned = 1;
		p->file = file;
	} else if (mem != NULL) {
		p->data = (uint8_t *)mem;
		p->len = len;
	}
	return 0;
}

static void unload_pem(pem *p)
{
	if (p->owned == 1 && p->data != NULL)
		tls_unload_file(p->data, p->len);
	else if (p->owned == 2)
		free(p->data);
	p->data = NULL;
}

/* libtls staples the bytes it is given, and clients want DER (what
 * `openssl ocsp -respout` writes). PEM text ("-----BEGIN OCSP RESPONSE-----")
 * is decoded here; anything that is neither is refused now rather than
 * stapled as garbage. */
static int staple_der(lua_State *L, pem *p, const char *opt)
{
	static const char begin[] = "-----BEGIN OCSP RESPONSE-----";
	static const char end[] = "-----END OCSP RESPONSE-----";
	const char *s = (const char *)p->data, *e, *q;
	uint8_t *out;
	size_t n, bad_at = 0;
	const char *why;
	if (p->data == NULL)
		return 0;
	if (p->len >= sizeof(begin) - 1 && memcmp(s, begin, sizeof(begin) - 1) == 0) {
		s += sizeof(begin) - 1;
		e = NULL;
		for (q = s; q + sizeof(end) - 1 <= (const char *)p->data + p->len; q++)
			if (memcmp(q, end, sizeof(end) - 1) == 0) {
				e = q;
				break;
			}
		if (e == NULL || ltls_base64_check(s, (size_t)(e - s), &why, &bad_at) < 0 ||
		    (out = malloc(e - s + 1)) == NULL)
			goto bad;
		n = ltls_base64_decode(s, (size_t)(e - s), out);
		unload_pem(p);
		p->data = out;
		p->len = n;
		p->owned = 2;
	}
	/* an OCSPResponse is a DER SEQUENCE */
	if (p->len >= 2 && p->data[0] == 0x30)
		return 0;
bad:
	if (p->file)
		lua_pushfstring(L, "%s: '%s' is not an OCSP response (DER, or PEM "
		    "\"-----BEGIN OCSP RESPONSE-----\")", opt, p->file);
	else
		lua_pushfstring(L, "%s: not an OCSP response (DER, or PEM "
		    "\"-----BEGIN OCSP RESPONSE-----\")", opt);
	return -1;
}

/* A key must match its certificate: libtls only notices when a context is
 * configured, so try one now and report it against the option that caused it. */
static int check_keypair(lua_State *L, pem *cert, pem *key, pem *staple, const char *where)
{
	struct tls_config *trial = tls_config_new();
	struct tls *srv = tls_server();
	char err[256];
	int ok = 0;
	/* nothing here may raise while trial and srv are held: the message is
	 * copied out and pushed once they are freed */
	snprintf(err, sizeof(err), "out of memory");
	if (trial == NULL || srv == NULL)
		goto out;
	tls_config_set_ca_mem(trial, NULL, 0);
	if (tls_config_set_keypair_ocsp_mem(trial, cert->data, cert->len,
	    key->data, key->len, staple->data, staple->len) != 0 ||
	    tls_configure(srv, trial) != 0) {
		const char *e = tls_config_error(trial);
		if (e == NULL)
			e = tls_error(srv);
		snprintf(err, sizeof(err), "%s", e ? e : "unknown error");
		goto out;
	}
	ok = 1;
out:
	tls_free(srv);
	tls_config_free(trial);
	if (!ok)
		lua_pushfstring(L, "%s: %s (%s%s%s) does not form a usable keypair: %s",
		    where,
		    key->file ? "key_file" : "key", key->file ? key->file : "PEM text",
		    cert->file ? ", cert_file " : ", cert ",
		    cert->file ? cert->file : "PEM text", err);
	return ok ? 0 : -1;
}

/* The PEM buffers of one keypair, boxed: any Lua call below may raise (a
 * memory error), and the box's __gc then unloads (and zeroes) what was read. */
#define LTLS_PEM_BOX "tls.pem_box"
typedef struct pem_box {
	pem cert, key, staple;
} pem_box;

static int pem_box_gc(lua_State *L)
{
	pem_box *b = luaL_checkudata(L, 1, LTLS_PEM_BOX);
	unload_pem(&b->cert);
	unload_pem(&b->key);
	unload_pem(&b->staple);
	return 0;
}

/* Text without a PEM block: say so here, because libtls's own message for it
 * can carry a stale OpenSSL error from an earlier failure (a garbage
 * certificate would be reported as "key values mismatch"). */
static int not_pem(lua_State *L, const pem *p, const char *file_opt, const char *mem_opt,
    const char *where)
{
	if (p->data == NULL || ltls_memmem(p->data, p->len, "-----BEGIN ", 11) != NULL)
		return 0;
	if (p->file != NULL)
		lua_pushfstring(L, "%s: %s '%s' is not PEM (no -----BEGIN line)", where,
		    file_opt, p->file);
	else if (memchr(p->data, '\n', p->len) == NULL)  /* one line: a file name? */
		lua_pushfstring(L, "%s: %s is not PEM text (no -----BEGIN line); for a file "
		    "name use %s (LuaSec's %s is a path)", where, mem_opt, file_opt,
		    strcmp(mem_opt, "cert") == 0 ? "certificate" : mem_opt);
	else
		lua_pushfstring(L, "%s: %s is not PEM text (no -----BEGIN line)", where, mem_opt);
	return 1;
}

/* One keypair from table t (the options table itself or a keypairs entry). */
static int add_keypair(lua_State *L, ltls_config *c, int t, int first, const char *where)
{
	pem_box *box = lua_newuserdatauv(L, sizeof(*box), 0);
	pem *cert = &box->cert, *key = &box->key, *staple = &box->staple;
	int boxidx = lua_gettop(L);
	const char *password;
	int rc = -1;
	memset(box, 0, sizeof(*box));
	luaL_setmetatable(L, LTLS_PEM_BOX);
	password = opt_string(L, t, "key_password", NULL);
	if (load_pem(L, t, "cert_file", "cert", NULL, cert) != 0)
		goto out;
	if (cert->data == NULL) {
		lua_pushfstring(L, "%s: needs cert_file or cert", where);
		goto out;
	}
	if (load_pem(L, t, "key_file", "key", password, key) != 0)
		goto out;
	if (key->data == NULL) {
		lua_pushfstring(L, "%s: needs key_file or key to go with the certificate", where);
		goto out;
	}
	if (load_pem(L, t, "ocsp_staple_file", "ocsp_staple", NULL, staple) != 0 ||
	    staple_der(L, staple, staple->file ? "ocsp_staple_file" : "ocsp_staple") != 0)
		goto out;
	if (not_pem(L, cert, "cert_file", "cert", where) || not_pem(L, key, "key_file", "key", where))
		goto out;
	if (check_keypair(L, cert, key, staple, where) != 0)
		goto out;
	if ((first ? tls_config_set_keypair_ocsp_mem : tls_config_add_keypair_ocsp_mem)(
	    c->cfg, cert->data, cert->len, key->data, key->len, staple->data, staple->len) != 0) {
		lua_pushfstring(L, "%s: %s", where, tls_config_error(c->cfg));
		goto out;
	}
	c->has_keypair = 1;
	/* libtls never says which keypair SNI chose: keep each certificate, in
	 * libtls's order, for the Lua layer to match the server name against */
	lua_getiuservalue(L, LTLS_CONFIG_SLOT, 1);
	lua_pushlstring(L, (const char *)cert->data, cert->len);
	lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
	lua_pop(L, 1);
	rc = 0;
out:
	unload_pem(cert);
	unload_pem(key);
	unload_pem(staple);
	lua_remove(L, boxidx);  /* the message, if any, stays on top */
	return rc;
}

static int set_keypairs(lua_State *L, ltls_config *c, int t)
{
	int first = 1;
	lua_Integer i, n;
	if (opt_string(L, t, "cert_file", NULL) || opt_string(L, t, "cert", NULL) ||
	    opt_string(L, t, "key_file", NULL) || opt_string(L, t, "key", NULL)) {
		if (add_keypair(L, c, t, 1, "cert/key") != 0)
			return -1;
		first = 0;
	}
	lua_getfield(L, t, "keypairs");
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return 0;
	}
	n = luaL_len(L, -1);
	for (i = 1; i <= n; i++) {
		char where[64];
		lua_geti(L, -1, i);
		if (!lua_istable(L, -1))
			luaL_error(L, "tls.config: keypairs[%d] must be a table, got %s",
			    (int)i, luaL_typename(L, -1));
		snprintf(where, sizeof(where), "keypairs[%d]", (int)i);
		if (add_keypair(L, c, lua_gettop(L), first, where) != 0) {
			lua_replace(L, -3);  /* keep the message, drop entry and list */
			lua_pop(L, 1);
			return -1;
		}
		first = 0;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return 0;
}

static int set_alpn(lua_State *L, ltls_config *c, int t)
{
	luaL_Buffer b;
	lua_Integer i, n;
	int list;
	lua_getfield(L, t, "alpn");
	list = lua_gettop(L);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return 0;
	}
	n = luaL_len(L, -1);
	luaL_buffinit(L, &b);
	/* the buffer owns the top of the stack: the comma goes in before the
	 * next name is pushed, and the name is added from the top (addvalue) */
	for (i = 1; i <= n; i++) {
		size_t len = 0;
		if (i > 1)
			luaL_addchar(&b, ',');
		lua_geti(L, list, i);
		if (lua_type(L, -1) == LUA_TSTRING)
			(void)lua_tolstring(L, -1, &len);
		if (lua_type(L, -1) != LUA_TSTRING || len == 0 || len > 255 ||
		    memchr(lua_tostring(L, -1), ',', len) != NULL)
			luaL_error(L, "tls.config: alpn[%d] must be a protocol name "
			    "of 1 to 255 bytes without commas", (int)i);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	if (n > 0 && tls_config_set_alpn(c->cfg, lua_tostring(L, -1)) != 0) {
		lua_pushfstring(L, "alpn: %s", tls_config_error(c->cfg));
		return -1;
	}
	lua_settop(L, list - 1);
	return 0;
}

static int set_file_or_mem(lua_State *L, ltls_config *c, int t, const char *file_opt,
    const char *mem_opt, int (*set_file)(struct tls_config *, const char *),
    int (*set_mem)(struct tls_config *, const uint8_t *, size_t))
{
	size_t len;
	const char *file = opt_string(L, t, file_opt, NULL);
	const char *mem = opt_string(L, t, mem_opt, &len);
	if (file != NULL && mem != NULL) {
		lua_pushfstring(L, "%s: give either %s or %s, not both", file_opt, file_opt, mem_opt);
		return -1;
	}
	if (file != NULL && set_file(c->cfg, file) != 0) {
		lua_pushfstring(L, "%s: cannot read '%s': %s", file_opt, file,
		    tls_config_error(c->cfg));
		return -1;
	}
	if (mem != NULL && set_mem(c->cfg, (const uint8_t *)mem, len) != 0) {
		lua_pushfstring(L, "%s: %s", mem_opt, tls_config_error(c->cfg));
		return -1;
	}
	return 0;
}

/* CA certificates that are not PEM would only fail at the first handshake
 * ("unable to get local issuer"): say so now. libtls holds ca_file's bytes. */
static int check_ca_pem(lua_State *L, int t)
{
	size_t len = 0;
	const char *file = opt_string(L, t, "ca_file", NULL);
	const char *mem = opt_string(L, t, "ca", &len);
	if (mem != NULL && ltls_memmem(mem, len, "-----BEGIN CERTIFICATE-----", 27) == NULL) {
		lua_pushliteral(L, "ca: not PEM certificates (no -----BEGIN CERTIFICATE----- line)");
		return -1;
	}
	if (file != NULL) {
		size_t flen = 0;
		uint8_t *data = tls_load_file(file, &flen, NULL);
		int ok = data != NULL &&
		    ltls_memmem(data, flen, "-----BEGIN CERTIFICATE-----", 27) != NULL;
		if (data != NULL)
			tls_unload_file(data, flen);
		if (!ok) {
			lua_pushfstring(L, "ca_file: '%s' holds no PEM certificate "
			    "(no -----BEGIN CERTIFICATE----- line)", file);
			return -1;
		}
	}
	return 0;
}

/* The policy looks up which trusted CA issued a path's last certificate
 * (core.x509_anchor): keep what the trust options named. */
static int record_trust(lua_State *L, ltls_config *c, int t, const char *dir)
{
	size_t len = 0;
	const char *mem = opt_string(L, t, "ca", &len);
	if (ltls_trust_set(c, opt_string(L, t, "ca_file", NULL), mem, len, dir) != 0) {
		lua_pushliteral(L, "tls.config: out of memory");
		return -1;
	}
	return 0;
}

/* Trust: what the user named, else the system store through its hashed
 * directory, which libtls looks up per certificate instead of re-parsing the
 * whole bundle for every client connection. */
static int set_trust(lua_State *L, ltls_config *c, int t)
{
	struct stat st;
	const char *path = opt_string(L, t, "ca_path", NULL);
	int named = path || opt_string(L, t, "ca_file", NULL) || opt_string(L, t, "ca", NULL);
	if (named) {
		tls_config_set_ca_mem(c->cfg, NULL, 0);
		if (set_file_or_mem(L, c, t, "ca_file", "ca", tls_config_set_ca_file,
		    tls_config_set_ca_mem) != 0 || check_ca_pem(L, t) != 0)
			return -1;
		if (record_trust(L, c, t, path) != 0)
			return -1;
		if (path != NULL) {
			if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
				lua_pushfstring(L, "ca_path: '%s' is not a readable directory", path);
				return -1;
			}
			if (tls_config_set_ca_path(c->cfg, path) != 0) {
				lua_pushfstring(L, "ca_path: %s", tls_config_error(c->cfg));
				return -1;
			}
		}
		return 0;
	}
	if (stat(LTLS_DEFAULT_CA_PATH, &st) == 0 && S_ISDIR(st.st_mode)) {
		tls_config_set_ca_mem(c->cfg, NULL, 0);
		tls_config_set_ca_path(c->cfg, LTLS_DEFAULT_CA_PATH);
		return record_trust(L, c, t, LTLS_DEFAULT_CA_PATH);
	}
	return 0;
}

static int set_protocols(lua_State *L, ltls_config *c, int t)
{
	uint32_t protocols = TLS_PROTOCOL_TLSv1_2 | TLS_PROTOCOL_TLSv1_3;
	const char *s = opt_string(L, t, "protocols", NULL);
	if (s != NULL) {
		if (tls_config_parse_protocols(&protocols, s) != 0) {
			lua_pushfstring(L, "protocols: cannot parse '%s' "
			    "(use for example \"tlsv1.2,tlsv1.3\" or \"tlsv1.3\")", s);
			return -1;
		}
		if (protocols & (TLS_PROTOCOL_TLSv1_0 | TLS_PROTOCOL_TLSv1_1)) {
			lua_pushfstring(L, "protocols: '%s' enables TLS 1.0 or 1.1, which "
			    "lua-tls does not offer; use tlsv1.2 and/or tlsv1.3", s);
			return -1;
		}
		if (protocols == 0) {
			lua_pushfstring(L, "protocols: '%s' enables no protocol", s);
			return -1;
		}
	}
	tls_config_set_protocols(c->cfg, protocols);
	return 0;
}

static int set_ticket_keys(lua_State *L, ltls_config *c, int t)
{
	lua_Integer i, n;
	lua_getfield(L, t, "ticket_keys");
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return 0;
	}
	n = luaL_len(L, -1);
	for (i = 1; i <= n; i++) {
		size_t len;
		const char *k;
		lua_geti(L, -1, i);
		k = lua_tolstring(L, -1, &len);
		if (lua_type(L, -1) != LUA_TSTRING || len != TLS_TICKET_KEY_SIZE)
			luaL_error(L, "tls.config: ticket_keys[%d] must be a string of "
			    "%d random bytes", (int)i, TLS_TICKET_KEY_SIZE);
		if (tls_config_add_ticket_key(c->cfg, (uint32_t)i, (unsigned char *)k, len) != 0) {
			lua_pushfstring(L, "ticket_keys[%d]: %s", (int)i, tls_config_error(c->cfg));
			return -1;
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return 0;
}

void ltls_session_fd_release(ltls_session_fd **s)
{
	if (*s != NULL && --(*s)->refs == 0) {
		if ((*s)->fd >= 0)
			close((*s)->fd);
		free(*s);
	}
	*s = NULL;
}

static int set_session_file(lua_State *L, ltls_config *c, int t)
{
	const char *file = opt_string(L, t, "session_file", NULL);
	int fd;
	if (file == NULL)
		return 0;
	if ((c->session = malloc(sizeof(*c->session))) == NULL) {
		lua_pushliteral(L, "session_file: out of memory");
		return -1;
	}
	c->session->fd = -1;
	c->session->refs = 1;
	/* never through a symlink: libtls writes the session's secrets into
	 * whatever file this is (a link planted in a shared directory could
	 * aim them at, and truncate, another file of this user) */
	if ((fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		if (errno == ELOOP)
			lua_pushfstring(L, "session_file: '%s' is a symbolic link; give the "
			    "path of a regular file (the session's secrets are written to it)", file);
		else
			lua_pushfstring(L, "session_file: cannot open '%s': %s", file, strerror(errno));
		return -1;
	}
	c->session->fd = fd;
	if (tls_config_set_session_fd(c->cfg, fd) != 0) {
		lua_pushfstring(L, "session_file: '%s': %s", file, tls_config_error(c->cfg));
		return -1;
	}
	return 0;
}

static int set_ciphers(lua_State *L, ltls_config *c, int t)
{
	const char *s = opt_string(L, t, "ciphers", NULL);
	if (s == NULL || strcmp(s, "secure") == 0 || strcmp(s, "default") == 0)
		s = LTLS_DEFAULT_CIPHERS;  /* libtls's aliases for "the safe set" */
	else if (strcmp(s, "compat") == 0 || strcmp(s, "legacy") == 0 ||
	    strcmp(s, "insecure") == 0 || strcmp(s, "all") == 0) {
		lua_pushfstring(L, "ciphers: '%s' is libtls's alias for weak suites; lua-tls "
		    "offers only AEAD suites with forward secrecy (leave ciphers unset)", s);
		return -1;
	} else {
		/* a list may narrow the defaults, never weaken them: CBC (MAC'd),
		 * static-RSA/DH and unauthenticated suites are dropped from it */
		lua_pushfstring(L, "%s%s", s, LTLS_CIPHER_FLOOR);
		s = lua_tostring(L, -1);
	}
	if (tls_config_set_ciphers(c->cfg, s) != 0) {
		lua_pushfstring(L, "ciphers: '%s' leaves no AEAD suite with forward "
		    "secrecy (lua-tls drops CBC, static-RSA and anonymous suites): %s",
		    opt_string(L, t, "ciphers", NULL), tls_config_error(c->cfg));
		return -1;
	}
	return 0;
}

static int set_ecdhecurves(lua_State *L, ltls_config *c, int t)
{
	const char *s = opt_string(L, t, "ecdhecurves", NULL);
	if (s != NULL && tls_config_set_ecdhecurves(c->cfg, s) != 0) {
		lua_pushfstring(L, "ecdhecurves: %s", tls_config_error(c->cfg));
		return -1;
	}
	return 0;
}

/* A top-level staple without a top-level cert has nothing to attach to
 * (set_keypairs, which runs first, staples the ones that do). */
static int check_staple_owner(lua_State *L, ltls_config *c, int t)
{
	if (!c->has_keypair && (opt_string(L, t, "ocsp_staple_file", NULL) ||
	    opt_string(L, t, "ocsp_staple", NULL))) {
		lua_pushstring(L, "ocsp_staple_file: a staple needs the cert_file/key_file it belongs to");
		return -1;
	}
	return 0;
}

/* An integer option within [min, max], or -1 when it is not given. */
static int opt_range(lua_State *L, int t, const char *name, lua_Integer min, lua_Integer max,
    lua_Integer *n)
{
	int given;
	lua_getfield(L, t, name);
	given = !lua_isnil(L, -1);
	*n = lua_tointeger(L, -1);
	lua_pop(L, 1);
	if (!given)
		return 0;
	return *n >= min && *n <= max ? 1 : -1;
}

static int set_verify_depth(lua_State *L, ltls_config *c, int t)
{
	lua_Integer n;
	int r = opt_range(L, t, "verify_depth", 0, 100, &n);
	if (r < 0) {
		lua_pushstring(L, "verify_depth: must be between 0 and 100");
		return -1;
	}
	if (r > 0)
		tls_config_set_verify_depth(c->cfg, (int)n + VERIFY_DEPTH_EXTRA);
	return 0;
}

static int set_verify_client(lua_State *L, ltls_config *c, int t)
{
	lua_getfield(L, t, "verify_client");
	if (lua_type(L, -1) == LUA_TSTRING)
		tls_config_verify_client_optional(c->cfg);
	else if (lua_toboolean(L, -1))
		tls_config_verify_client(c->cfg);
	lua_pop(L, 1);
	return 0;
}

static int set_crl(lua_State *L, ltls_config *c, int t)
{
	return set_file_or_mem(L, c, t, "crl_file", "crl", tls_config_set_crl_file,
	    tls_config_set_crl_mem);
}

static int set_ocsp_require_stapling(lua_State *L, ltls_config *c, int t)
{
	if (opt_bool(L, t, "ocsp_require_stapling"))
		tls_config_ocsp_require_stapling(c->cfg);
	return 0;
}

static int set_session_lifetime(lua_State *L, ltls_config *c, int t)
{
	lua_Integer n;
	int r = opt_range(L, t, "session_lifetime", 0, 7 * 24 * 3600, &n);
	if (r < 0 || (r > 0 && tls_config_set_session_lifetime(c->cfg, (int)n) != 0)) {
		lua_pushstring(L, "session_lifetime: must be 0 to 604800 seconds");
		return -1;
	}
	return 0;
}

static int set_session_id(lua_State *L, ltls_config *c, int t)
{
	size_t len;
	const char *s = opt_string(L, t, "session_id", &len);
	if (s != NULL && (len < 1 || len > TLS_MAX_SESSION_ID_LENGTH ||
	    tls_config_set_session_id(c->cfg, (const unsigned char *)s, len) != 0)) {
		lua_pushfstring(L, "session_id: must be 1 to %d bytes", TLS_MAX_SESSION_ID_LENGTH);
		return -1;
	}
	return 0;
}

static int set_noverifycert(lua_State *L, ltls_config *c, int t)
{
	if (opt_bool(L, t, "insecure_noverifycert")) {
		tls_config_insecure_noverifycert(c->cfg);
		c->insecure |= LTLS_INSECURE_NOVERIFYCERT;
	}
	return 0;
}

static int set_noverifyname(lua_State *L, ltls_config *c, int t)
{
	if (opt_bool(L, t, "insecure_noverifyname")) {
		tls_config_insecure_noverifyname(c->cfg);
		c->insecure |= LTLS_INSECURE_NOVERIFYNAME;
	}
	return 0;
}

static int set_noverifytime(lua_State *L, ltls_config *c, int t)
{
	if (opt_bool(L, t, "insecure_noverifytime")) {
		tls_config_insecure_noverifytime(c->cfg);
		c->insecure |= LTLS_INSECURE_NOVERIFYTIME;
	}
	return 0;
}

/* Every option's setter, in the options table's order (which is the order
 * they are applied in); each runs whether its option is given or not, so
 * that defaults are set too. */
static int apply(lua_State *L, ltls_config *c, int t)
{
	const struct option *o;
	for (o = options; o->name != NULL; o++)
		if (o->set != NULL && o->set(L, c, t) != 0)
			return -1;
	return 0;
}

static void release(ltls_config *c)
{
	/* libtls reference-counts configs: contexts that use it keep it alive */
	if (c->cfg != NULL) {
		tls_config_free(c->cfg);
		c->cfg = NULL;
	}
	/* client conns made from this config keep their own reference */
	ltls_session_fd_release(&c->session);
	ltls_trust_free(c);
}

/* core.config(opts) -> config | nil, message */
int ltls_config_new(lua_State *L)
{
	ltls_config *c;
	int t;
	if (lua_isnoneornil(L, 1)) {
		lua_settop(L, 0);
		lua_newtable(L);
	}
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	t = 1;
	check_options(L, t);
	c = lua_newuserdatauv(L, sizeof(*c), 1);
	c->cfg = NULL;
	c->session = NULL;
	c->has_keypair = 0;
	c->insecure = 0;
	c->trust = NULL;
	luaL_setmetatable(L, LTLS_CONFIG);
	lua_newtable(L);  /* keypair certificates, see add_keypair */
	lua_setiuservalue(L, LTLS_CONFIG_SLOT, 1);
	if ((c->cfg = tls_config_new()) == NULL)
		return luaL_error(L, "tls.config: out of memory");
	if (apply(L, c, t) != 0) {
		release(c);
		lua_pushnil(L);
		lua_insert(L, -2);
		return 2;
	}
	lua_settop(L, 2);
	return 1;
}

ltls_config *ltls_checkconfig(lua_State *L, int idx)
{
	ltls_config *c = luaL_checkudata(L, idx, LTLS_CONFIG);
	if (c->cfg == NULL)
		luaL_error(L, "attempt to use a freed tls config");
	return c;
}

static int config_gc(lua_State *L)
{
	release(luaL_checkudata(L, 1, LTLS_CONFIG));
	return 0;
}

static int config_tostring(lua_State *L)
{
	ltls_config *c = luaL_checkudata(L, 1, LTLS_CONFIG);
	lua_pushfstring(L, "tls.config (%s%s): %p", c->has_keypair ? "with keypair" : "no keypair",
	    c->cfg ? "" : ", freed", (void *)c);
	return 1;
}

/* cfg:keypair_certs() -> {cert PEM, ...}, a fresh list: [1] is the
 * default keypair, the rest are SNI alternatives in the order libtls tries
 * them (tls.sni applies libtls's rule to them). */
static int config_keypair_certs(lua_State *L)
{
	lua_Integer i, n;
	luaL_checkudata(L, 1, LTLS_CONFIG);
	lua_getiuservalue(L, 1, 1);
	n = (lua_Integer)lua_rawlen(L, -1);
	lua_createtable(L, (int)n, 0);
	for (i = 1; i <= n; i++) {
		lua_rawgeti(L, -2, i);
		lua_rawseti(L, -2, i);
	}
	return 1;
}

static int config_has_keypair(lua_State *L)
{
	lua_pushboolean(L, ltls_checkconfig(L, 1)->has_keypair);
	return 1;
}

/* cfg:insecure() -> noverifycert, noverifyname, noverifytime: what the
 * options turned off, for callers handed a config instead of options. */
static int config_insecure(lua_State *L)
{
	ltls_config *c = ltls_checkconfig(L, 1);
	lua_pushboolean(L, c->insecure & LTLS_INSECURE_NOVERIFYCERT);
	lua_pushboolean(L, c->insecure & LTLS_INSECURE_NOVERIFYNAME);
	lua_pushboolean(L, c->insecure & LTLS_INSECURE_NOVERIFYTIME);
	return 3;
}

void ltls_config_open(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__gc", config_gc },
		{ "__close", config_gc },
		{ "__tostring", config_tostring },
		{ NULL, NULL }
	};
	static const luaL_Reg methods[] = {
		{ "has_keypair", config_has_keypair },
		{ "insecure", config_insecure },
		{ "keypair_certs", config_keypair_certs },
		{ NULL, NULL }
	};
	luaL_newmetatable(L, LTLS_CONFIG);
	luaL_setfuncs(L, meta, 0);
	luaL_newlib(L, methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newmetatable(L, LTLS_PEM_BOX);
	lua_pushcfunction(L, pem_box_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
}
