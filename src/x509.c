/*
 * Certificate checks that need real crypto, through libcrypto (libtls's own
 * dependency): which certificate signed which, which configured CA issued a
 * certificate, and SHA-256. tls.policy uses them to see only the path that
 * was verified, never an extra certificate the peer merely sent.
 *
 * Every OpenSSL object lives in a scratch box (a userdata with __gc) made
 * before the first one is created, so a memory error raised by Lua while a
 * result is pushed cannot leak them.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "ltls.h"

#define LTLS_X509_BOX "tls.x509 scratch"

/* What a config trusts, as its options named it (copies), and the store
 * built from them on the first anchor lookup. */
struct ltls_trust {
	char *file;           /* ca_file */
	char *dir;            /* ca_path, or the system default */
	char *mem;            /* ca */
	size_t mem_len;
	X509_STORE *store;    /* NULL until needed */
	int store_failed;
};

typedef struct x509_box {
	X509 *a, *b;
	X509_STORE_CTX *ctx;
	STACK_OF(X509) *candidates;
} x509_box;

static void box_release(x509_box *box)
{
	X509_free(box->a);
	X509_free(box->b);
	box->a = box->b = NULL;
	if (box->ctx != NULL)
		X509_STORE_CTX_free(box->ctx);
	box->ctx = NULL;
	if (box->candidates != NULL)
		sk_X509_pop_free(box->candidates, X509_free);
	box->candidates = NULL;
}

static int box_gc(lua_State *L)
{
	box_release(luaL_checkudata(L, 1, LTLS_X509_BOX));
	return 0;
}

static x509_box *new_box(lua_State *L)
{
	x509_box *box = lua_newuserdatauv(L, sizeof(*box), 0);
	memset(box, 0, sizeof(*box));
	if (luaL_newmetatable(L, LTLS_X509_BOX)) {
		lua_pushcfunction(L, box_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	return box;
}

static X509 *der_cert(lua_State *L, int idx)
{
	size_t len;
	const unsigned char *p = (const unsigned char *)luaL_checklstring(L, idx, &len);
	const unsigned char *end = p + len;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	if (x != NULL && p != end) {  /* trailing bytes: not one certificate */
		X509_free(x);
		x = NULL;
	}
	return x;
}

/* Did `parent` issue `child`: names and key identifiers chain, the parent
 * may sign certificates (a CA), and its key verifies the child's signature.
 * NULL when it did, else what failed. */
static const char *issued_by(X509 *child, X509 *parent)
{
	EVP_PKEY *key;
	int rc = X509_check_issued(parent, child);
	if (rc != X509_V_OK)
		return X509_verify_cert_error_string(rc);
	if (X509_check_ca(parent) == 0)
		return "the issuer is not a CA certificate";
	if ((key = X509_get0_pubkey(parent)) == NULL)
		return "the issuer's public key cannot be read";
	if (X509_verify(child, key) != 1)
		return "the signature does not verify with the issuer's key";
	return NULL;
}

/* core.x509_issued(child_der, parent_der) -> true | false, reason */
static int x509_issued(lua_State *L)
{
	const char *why;
	x509_box *box;
	luaL_checkstring(L, 1);
	luaL_checkstring(L, 2);
	box = new_box(L);
	box->a = der_cert(L, 1);
	box->b = der_cert(L, 2);
	if (box->a == NULL || box->b == NULL)
		why = box->a == NULL ? "the certificate is not DER" : "the issuer is not DER";
	else
		why = issued_by(box->a, box->b);
	box_release(box);
	if (why == NULL) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushboolean(L, 0);
	lua_pushstring(L, why);
	return 2;
}

static char *dup_string(const char *s, size_t len)
{
	char *d = malloc(len + 1);
	if (d != NULL) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

int ltls_trust_set(ltls_config *c, const char *file, const char *mem, size_t mem_len,
    const char *dir)
{
	struct ltls_trust *t;
	ltls_trust_free(c);
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return -1;
	c->trust = t;
	if ((file != NULL && (t->file = dup_string(file, strlen(file))) == NULL) ||
	    (dir != NULL && (t->dir = dup_string(dir, strlen(dir))) == NULL) ||
	    (mem != NULL && (t->mem = dup_string(mem, mem_len)) == NULL))
		return -1;
	t->mem_len = mem_len;
	return 0;
}

void ltls_trust_free(ltls_config *c)
{
	struct ltls_trust *t = c->trust;
	if (t == NULL)
		return;
	free(t->file);
	free(t->dir);
	free(t->mem);
	if (t->store != NULL)
		X509_STORE_free(t->store);
	free(t);
	c->trust = NULL;
}

static int add_mem(X509_STORE *store, const char *mem, size_t len)
{
	X509 *x;
	int n = 0;
	BIO *bio = BIO_new_mem_buf(mem, (int)len);
	if (bio == NULL)
		return -1;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		X509_STORE_add_cert(store, x);  /* a duplicate is not an error */
		X509_free(x);
		n++;
	}
	ERR_clear_error();
	BIO_free(bio);
	return n > 0 ? 0 : -1;
}

static X509_STORE *trust_store(struct ltls_trust *t)
{
	X509_STORE *s;
	X509_LOOKUP *lookup;
	if (t->store != NULL || t->store_failed)
		return t->store;
	if ((s = X509_STORE_new()) == NULL)
		return NULL;
	if ((t->mem != NULL && add_mem(s, t->mem, t->mem_len) != 0) ||
	    (t->file != NULL && ((lookup = X509_STORE_add_lookup(s, X509_LOOKUP_file())) == NULL ||
	    X509_LOOKUP_load_file(lookup, t->file, X509_FILETYPE_PEM) != 1)) ||
	    (t->dir != NULL && ((lookup = X509_STORE_add_lookup(s, X509_LOOKUP_hash_dir())) == NULL ||
	    X509_LOOKUP_add_dir(lookup, t->dir, X509_FILETYPE_PEM) != 1))) {
		X509_STORE_free(s);
		ERR_clear_error();
		t->store_failed = 1;
		return NULL;
	}
	t->store = s;
	return s;
}

/* Whether x is valid now: libtls's verification refuses a CA certificate
 * outside its validity, so an anchor must be inside it too (unless the
 * config turned time checks off). */
static int valid_now(X509 *x)
{
	return X509_cmp_current_time(X509_get0_notBefore(x)) < 0 &&
	    X509_cmp_current_time(X509_get0_notAfter(x)) > 0;
}

/* core.x509_anchor(config, der) -> anchor_der | nil, reason: the CA
 * certificate among the config's trusted ones (ca, ca_file, ca_path or the
 * system store) that issued the certificate `der` (its signature checked)
 * and is valid now (unless insecure_noverifytime); a trusted certificate
 * identical to `der` is its own anchor. */
static int x509_anchor(lua_State *L)
{
	ltls_config *c = ltls_checkconfig(L, 1);
	X509_STORE *store;
	x509_box *box;
	int i, n, len;
	unsigned char *out;
	luaL_Buffer b;
	luaL_checkstring(L, 2);
	box = new_box(L);
	if ((box->a = der_cert(L, 2)) == NULL) {
		lua_pushnil(L);
		lua_pushliteral(L, "the certificate is not DER");
		return 2;
	}
	if (c->trust == NULL || (store = trust_store(c->trust)) == NULL) {
		lua_pushnil(L);
		lua_pushliteral(L, "the config's trusted certificates cannot be read");
		return 2;
	}
	if ((box->ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(box->ctx, store, box->a, NULL) != 1)
		return luaL_error(L, "tls.core: out of memory");
	box->candidates = X509_STORE_CTX_get1_certs(box->ctx, X509_get_issuer_name(box->a));
	ERR_clear_error();
	n = box->candidates == NULL ? 0 : sk_X509_num(box->candidates);
	for (i = 0; i < n; i++) {
		X509 *cand = sk_X509_value(box->candidates, i);
		if (!(c->insecure & LTLS_INSECURE_NOVERIFYTIME) && !valid_now(cand))
			continue;
		if (X509_cmp(cand, box->a) == 0 || issued_by(box->a, cand) == NULL) {
			if ((len = i2d_X509(cand, NULL)) <= 0)
				break;
			/* the allocation below can run a finalizer that closes the
			 * config and frees the store the context points into: drop
			 * the context first (cand belongs to box->candidates) */
			X509_STORE_CTX_free(box->ctx);
			box->ctx = NULL;
			out = (unsigned char *)luaL_buffinitsize(L, &b, (size_t)len);
			len = i2d_X509(cand, &out);
			luaL_pushresultsize(&b, (size_t)(len > 0 ? len : 0));
			box_release(box);
			return 1;
		}
	}
	box_release(box);
	lua_pushnil(L);
	lua_pushliteral(L, "no trusted certificate issued it");
	return 2;
}

/* core.sha256(data) -> the 32-byte digest */
static int x509_sha256(lua_State *L)
{
	size_t len;
	const char *data = luaL_checklstring(L, 1, &len);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		return luaL_error(L, "tls.core: SHA-256 failed");
	lua_pushlstring(L, (const char *)md, mdlen);
	return 1;
}

void ltls_x509_open(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{ "x509_issued", x509_issued },
		{ "x509_anchor", x509_anchor },
		{ "sha256", x509_sha256 },
		{ NULL, NULL }
	};
	luaL_setfuncs(L, funcs, 0);
}
