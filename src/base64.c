/*
 * The one base64 decoder of lua-tls (RFC 4648, standard alphabet, '='
 * padding): PEM bodies and pins in Lua (core.base64_decode, behind
 * tls.base64.decode) and PEM OCSP staples in config.c. Strict: PEM that is
 * not clean base64 is damaged, and guessing at it would hide that. ASCII
 * whitespace is skipped (PEM wraps lines).
 */
#include <string.h>

#include "ltls.h"

static int b64_value(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z') return ch - 'A';
	if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9') return ch - '0' + 52;
	if (ch == '+') return 62;
	if (ch == '/') return 63;
	return -1;
}

static int is_space(unsigned char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

/* Checks base64 text: the decoded length, or -1 with *why set (and *bad_at,
 * for an invalid character, its 1-based position counted without whitespace). */
long ltls_base64_check(const char *s, size_t len, const char **why, size_t *bad_at)
{
	size_t i, n = 0, pad = 0, bad = 0;
	int after_pad = 0;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (is_space(ch))
			continue;
		n++;
		if (ch == '=') {
			if (pad == 0)
				pad = n;
		} else if (pad != 0) {
			after_pad = 1;
		} else if (bad == 0 && b64_value(ch) < 0) {
			bad = n;
		}
	}
	if (n % 4 != 0) {
		*why = "base64: length is not a multiple of 4";
		return -1;
	}
	if (pad != 0 && (pad + 1 < n || after_pad)) {
		*why = "base64: padding in the middle of the data";
		return -1;
	}
	if (bad != 0) {
		*why = "base64: invalid character";
		*bad_at = bad;
		return -1;
	}
	return (long)(n / 4 * 3 - (pad != 0 ? n - pad + 1 : 0));
}

/* Decodes text that ltls_base64_check accepted into out (that many bytes). */
size_t ltls_base64_decode(const char *s, size_t len, unsigned char *out)
{
	size_t i, o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (i = 0; i < len; i++) {
		int v = b64_value((unsigned char)s[i]);
		if (v < 0)
			continue;  /* whitespace and the final padding */
		acc = (acc << 6) | (unsigned)v;
		if ((bits += 6) >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return o;
}

/* core.base64_decode(text) -> bytes | nil, message */
static int base64_decode(lua_State *L)
{
	size_t len, bad = 0;
	const char *s = luaL_checklstring(L, 1, &len);
	const char *why = NULL;
	luaL_Buffer b;
	unsigned char *out;
	long n = ltls_base64_check(s, len, &why, &bad);
	if (n < 0) {
		lua_pushnil(L);
		if (bad != 0)
			lua_pushfstring(L, "%s at position %d", why, (int)bad);
		else
			lua_pushstring(L, why);
		return 2;
	}
	out = (unsigned char *)luaL_buffinitsize(L, &b, (size_t)n);
	luaL_pushresultsize(&b, ltls_base64_decode(s, len, out));
	return 1;
}

void ltls_base64_open(lua_State *L)
{
	lua_pushcfunction(L, base64_decode);
	lua_setfield(L, -2, "base64_decode");
}
