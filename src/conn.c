/*
 * tls.conn: one TLS connection, over a descriptor or over memory (an engine).
 *
 * Every operation runs the same loop: call libtls; if it wants I/O, either
 * report "wantread"/"wantwrite" (memory transport, or timeout 0) or poll the
 * descriptor until the deadline. Nothing here yields or calls back into Lua.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ltls.h"

enum {
	E_OK = 0,
	E_WANTREAD = -10, E_WANTWRITE, E_TIMEOUT, E_CLOSED, E_FAIL, E_RETRY,
	E_TRUNCATED,   /* the peer's stream ended without close_notify */
	E_LINETOOLONG  /* a "*l"/"*L" line passed the conn's max_line */
};

/* Errors that libtls reports when the chain or the name did not verify. */
static const char *const verify_markers[] = {
	"certificate verification failed", "certificate verify failed",
	"not present in server certificate", "no server certificate",
	"ocsp", "OCSP", "unable to get local issuer",
	"self-signed", "self signed", "certificate has expired",
	"certificate is not yet valid", "certificate revoked",
	"peer did not return a certificate", "no peer certificate",
	NULL
};

/* A new conn, pushed. owner_idx (a stack index) is what it was made from
 * and uses until it is collected, kept as uservalue 1: a client's tls.config,
 * or a server-side conn's tls.server (libtls's SNI callback reads the
 * server's context during the handshake; the server anchors its config). */
ltls_conn *ltls_conn_alloc(lua_State *L, int owner_idx, int mode)
{
	ltls_conn *c;
	owner_idx = lua_absindex(L, owner_idx);
	c = lua_newuserdatauv(L, sizeof(*c), 2);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->timeout = -1;
	c->mem_limit = LTLS_MEM_LIMIT_DEFAULT;
	c->max_line = LTLS_MAX_LINE_DEFAULT;
	if (mode == LTLS_SERVER_CONN)
		c->flags |= LTLS_F_SERVER;
	luaL_setmetatable(L, LTLS_CONN);
	lua_pushvalue(L, owner_idx);
	lua_setiuservalue(L, -2, 1);
	return c;
}

/* The methods carry the metatable as their upvalue: comparing against it
 * skips luaL_checkudata's registry lookup by name on every send/receive.
 * Anything else (and callers without the upvalue) takes the checked path,
 * which raises the usual "tls.conn expected" error. */
ltls_conn *ltls_checkconn(lua_State *L, int idx)
{
	void *p = lua_touserdata(L, idx);
	if (p != NULL && lua_getmetatable(L, idx)) {
		int same = lua_rawequal(L, -1, lua_upvalueindex(1));
		lua_pop(L, 1);
		if (same)
			return p;
	}
	return luaL_checkudata(L, idx, LTLS_CONN);
}

static void set_flag(ltls_conn *c, unsigned flag, int on)
{
	if (on)
		c->flags |= flag;
	else
		c->flags &= ~flag;
}

static ltls_conn *checkopen(lua_State *L)
{
	ltls_conn *c = ltls_checkconn(L, 1);
	if (c->ctx == NULL)
		luaL_error(L, "attempt to use a closed tls connection");
	return c;
}

static void release(ltls_conn *c, int send_close_notify)
{
	if (c->ctx != NULL) {
		/* one non-blocking attempt: __gc must never wait for the peer */
		if (send_close_notify && c->state == LTLS_ESTABLISHED)
			(void)tls_close(c->ctx);
		tls_free(c->ctx);
		c->ctx = NULL;
	}
	c->state = LTLS_CLOSED;
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
		c->flags |= LTLS_F_SOCKET;
	}
	free(c->rbuf);
	c->rbuf = NULL;
	c->rfirst = c->rlast = 0;
	ltls_session_fd_release(&c->session);  /* after tls_free: no more writes */
}

/* What to do after libtls returned r (< 0): wait and retry, or give up. */
static int settle(ltls_conn *c, ssize_t r, double deadline)
{
	if (r == TLS_WANT_POLLIN || r == TLS_WANT_POLLOUT) {
		int w;
		c->want = (int)r;
		/* libtls says "want read" after a post-handshake record (a TLS 1.3
		 * session ticket) even when more records wait in memory: go on
		 * reading them. Each such call consumed a record, so this ends.
		 * Once feed_eof() ended the input, the end itself is still to be
		 * read (once: the read callback then sets LTLS_F_PEER_EOF), or a
		 * stream that ends after such a record would say "wantread" for
		 * input that can never come instead of "truncated". */
		if (c->fd < 0 && r == TLS_WANT_POLLIN && (ltls_membuf_len(&c->in) > 0 ||
		    (c->flags & (LTLS_F_INPUT_ENDED | LTLS_F_PEER_EOF)) == LTLS_F_INPUT_ENDED))
			return E_RETRY;
		if (c->fd < 0 || c->timeout == 0)
			return r == TLS_WANT_POLLIN ? E_WANTREAD : E_WANTWRITE;
		w = ltls_wait(c, (int)r, deadline);
		if (w == 0)
			return E_RETRY;
		if (w == 1)
			return E_TIMEOUT;
		c->io_errno = errno;
		return E_FAIL;
	}
	return E_FAIL;
}

static int is_disconnect(int e)
{
	return e == EPIPE || e == ECONNRESET || e == ENOTCONN || e == ECONNABORTED;
}

static int is_verify_error(const char *msg)
{
	const char *const *m;
	for (m = verify_markers; *m != NULL; m++)
		if (strstr(msg, *m) != NULL)
			return 1;
	return 0;
}

/* The peer's fatal alert (say, a client certificate the server refused)
 * says more than "closed", though the connection is gone all the same. */
static int peer_alerted(ltls_conn *c)
{
	const char *msg = c->ctx ? tls_error(c->ctx) : NULL;
	return msg != NULL && strstr(msg, " alert ") != NULL;
}

/* A TLS peer's first byte is a record type (0x14-0x17); these are a plain
 * HTTP client's request or a plain HTTP server's answer. */
static int peer_spoke_http(const ltls_conn *c)
{
	static const char *const starts[] = {
		"GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "CONNECT ",
		"PATCH ", "TRACE ", "HTTP/", NULL
	};
	const char *const *s;
	for (s = starts; *s != NULL; s++) {
		size_t n = strlen(*s);
		if (c->head_len >= n && memcmp(c->head, *s, n) == 0)
			return 1;
	}
	return 0;
}

/* Push the error for code; `what` names the operation for failure texts. */
static void push_failure(lua_State *L, ltls_conn *c, const char *what);

static void push_error(lua_State *L, ltls_conn *c, int code, const char *what)
{
	switch (code) {
	case E_WANTREAD: lua_pushliteral(L, "wantread"); return;
	case E_WANTWRITE: lua_pushliteral(L, "wantwrite"); return;
	case E_TIMEOUT: lua_pushliteral(L, "timeout"); return;
	case E_CLOSED: lua_pushliteral(L, "closed"); return;
	case E_LINETOOLONG:
		{
			/* %I is 5.3+'s; lua_pushfstring before it has no 64-bit format */
			char n[24];
			snprintf(n, sizeof n, "%lld", (long long)c->max_line);
			lua_pushfstring(L, "receive: line longer than %s bytes (conn:setmaxline "
			    "raises the limit)", n);
		}
		return;
	}
	/* A TLS failure (a truncation too) is final: later calls repeat it
	 * (libtls itself would say "read failed: Success" once its state is
	 * gone, and LibreSSL would still write after a failed decrypt). */
	if (c->failure[0] == '\0') {
		if (code == E_TRUNCATED)
			lua_pushliteral(L, "truncated");
		else
			push_failure(L, c, what);
		if (strcmp(lua_tostring(L, -1), "closed") != 0) {
			strncpy(c->failure, lua_tostring(L, -1), sizeof(c->failure) - 1);
			c->failure[sizeof(c->failure) - 1] = '\0';
		}
	} else
		lua_pushstring(L, c->failure);
}

/* tls_error()'s text, copied out of the context into buf (or NULL). A push
 * can run any finalizer (on Lua 5.1, LuaJIT and 5.2 before it copies), and
 * one that closes the conn frees the context and its message. */
static const char *error_text(struct tls *ctx, char *buf, size_t size)
{
	const char *msg = ctx ? tls_error(ctx) : NULL;
	if (msg == NULL)
		return NULL;
	snprintf(buf, size, "%s", msg);
	return buf;
}

/* The text for a failure (E_FAIL): which check, the peer's alert, the
 * transport's error, or "closed" when the peer simply went away. */
static void push_failure(lua_State *L, ltls_conn *c, const char *what)
{
	char buf[1024];
	const char *msg = error_text(c->ctx, buf, sizeof(buf));
	/* a server verifies only when verify_client asks it to */
	if (c->state == LTLS_HANDSHAKING && (c->flags & (LTLS_F_SERVER | LTLS_F_VERIFY)) &&
	    msg != NULL && is_verify_error(msg)) {
		/* OpenSSL's security level (a small key, a SHA-1 signature) is a
		 * strength rule like tls.policy's, which refuses the same
		 * certificates where the library (LibreSSL) does not */
		if (strstr(msg, "too weak") != NULL)
			lua_pushfstring(L, "policy: the TLS library's security level refused "
			    "the certificate (%s)", msg);
		else
			lua_pushfstring(L, "verify: %s", msg);
		return;
	}
	/* the libraries word this differently (http request, wrong version
	 * number, protocol version): the bytes the peer sent say it plainly */
	if (c->state == LTLS_HANDSHAKING && peer_spoke_http(c)) {
		lua_pushfstring(L, "%s: the peer speaks plain HTTP, not TLS (%s)", what,
		    msg ? msg : "no TLS record");
		return;
	}
	if (peer_alerted(c) && strcmp(what, "handshake") != 0) {
		lua_pushfstring(L, "%s: %s", what, msg);
		return;
	}
	if (c->io_errno != 0 && (is_disconnect(c->io_errno) || msg == NULL)) {
		if (strcmp(what, "handshake") != 0 && is_disconnect(c->io_errno)) {
			lua_pushliteral(L, "closed");
			return;
		}
		lua_pushfstring(L, "%s: %s", what, strerror(c->io_errno));
		return;
	}
	if ((c->flags & LTLS_F_PEER_EOF) && strcmp(what, "handshake") != 0) {
		lua_pushliteral(L, "closed");
		return;
	}
	if (c->flags & LTLS_F_PEER_EOF)
		lua_pushfstring(L, "%s: the peer closed the connection (%s)", what,
		    msg ? msg : "without a TLS alert");
	else
		lua_pushfstring(L, "%s: %s", what, msg ? msg : "unknown TLS error");
}

static int run_handshake(ltls_conn *c, double deadline)
{
	/* A failed handshake stays failed: called again, libtls reports success
	 * (after a fatal alert, with no peer certificate checked). tls_error()
	 * still holds the first failure's message. */
	if (c->failure[0] != '\0')
		return E_FAIL;
	for (;;) {
		int r = tls_handshake(c->ctx);
		if (r == 0) {
			c->state = LTLS_ESTABLISHED;
			c->want = 0;
			return E_OK;
		}
		if ((r = settle(c, r, deadline)) != E_RETRY) {
			return r;  /* E_FAIL: push_error stores the failure, which is final */
		}
	}
}

static void close_conn(ltls_conn *c);

/* The setcheck() check, run once the handshake is done: check(conn) ->
 * true, or false/nil and a reason. It passes once (and is dropped), or the
 * conn is closed and handshake() returns nil, "policy: <reason>". What the
 * check raises propagates. */
static int run_check(lua_State *L, ltls_conn *c)
{
	lua_settop(L, 1);
	lua_getiuservalue(L, 1, 2);
	lua_pushvalue(L, 1);
	lua_call(L, 1, 2);
	if (lua_toboolean(L, -2)) {
		c->flags &= ~LTLS_F_CHECK;
		lua_pushnil(L);
		lua_setiuservalue(L, 1, 2);
		lua_pushboolean(L, 1);
		return 1;
	}
	close_conn(c);
	if (lua_isnil(L, -1) || (lua_isboolean(L, -1) && !lua_toboolean(L, -1)))
		lua_pushliteral(L, "rejected");
	else
		luaL_tolstring(L, -1, NULL);
	if (strncmp(lua_tostring(L, -1), "policy:", 7) != 0) {
		lua_pushliteral(L, "policy: ");
		lua_insert(L, -2);
		lua_concat(L, 2);
	}
	lua_pushnil(L);
	lua_insert(L, -2);
	return 2;
}

/* conn:handshake() -> true | nil, err; then the pending check, if any. */
static int conn_handshake(lua_State *L)
{
	ltls_conn *c = ltls_checkconn(L, 1);
	int r;
	if (c->ctx == NULL) {
		lua_pushnil(L);
		lua_pushliteral(L, "closed");
		return 2;
	}
	if (c->state == LTLS_HANDSHAKING &&
	    (r = run_handshake(c, ltls_deadline(c->timeout))) != E_OK) {
		lua_pushnil(L);
		push_error(L, c, r, "handshake");
		return 2;
	}
	if (c->flags & LTLS_F_CHECK)
		return run_check(L, c);
	lua_pushboolean(L, 1);
	return 1;
}

/* One tls_read into dst, which has room for a whole record, waiting as the
 * conn's timeout allows: the count of bytes read (> 0), or an E_ code. */
static ssize_t read_record(ltls_conn *c, char *dst, double deadline)
{
	for (;;) {
		ssize_t n = tls_read(c->ctx, dst, LTLS_RBUF_SIZE);
		if (n > 0) {
			c->want = 0;
			return n;
		}
		/* A clean end is the peer's close_notify, after which tls_read
		 * returns 0 without the transport having reached its end. An end
		 * of stream or a reset without it is a truncation that anyone on
		 * the path can cause: OpenSSL 3 reports it as an error, LibreSSL's
		 * libtls returns 0 (with TLS_EOF_NO_CLOSE_NOTIFY), so the
		 * transport's own state decides, not the library's wording. */
		if (n == 0)
			return (c->flags & LTLS_F_PEER_EOF) ? E_TRUNCATED : E_CLOSED;
		if ((n = settle(c, n, deadline)) != E_RETRY) {
			if (n == E_FAIL && ((c->flags & LTLS_F_PEER_EOF) || is_disconnect(c->io_errno)) &&
			    !peer_alerted(c))
				return E_TRUNCATED;
			return n;
		}
	}
}

static int ensure_rbuf(ltls_conn *c)
{
	if (c->rbuf == NULL && (c->rbuf = malloc(LTLS_RBUF_SIZE)) == NULL) {
		c->io_errno = ENOMEM;
		return E_FAIL;
	}
	return E_OK;
}

/* Refill the plaintext buffer once it is empty. */
static int fill(ltls_conn *c, double deadline)
{
	ssize_t n;
	if (ensure_rbuf(c) != E_OK)
		return E_FAIL;
	if ((n = read_record(c, c->rbuf, deadline)) < 0)
		return (int)n;
	c->rfirst = 0;
	c->rlast = (size_t)n;
	return E_OK;
}

/* Move the bytes a read brought past the count into the conn's buffer
 * (which is empty whenever a read runs). */
static int keep_leftover(ltls_conn *c, const char *p, size_t len)
{
	if (ensure_rbuf(c) != E_OK)
		return E_FAIL;
	memmove(c->rbuf, p, len);
	c->rfirst = 0;
	c->rlast = len;
	return E_OK;
}

/* Room for n more bytes in b, or NULL when c was closed while it was made.
 * Growing a luaL_Buffer allocates through Lua, which can run any __gc,
 * including one that closes this conn (its context and rbuf are freed
 * then): every receive path makes room first and re-checks the conn
 * before it reads conn state into the room. */
static char *room(luaL_Buffer *b, ltls_conn *c, size_t n)
{
	char *p = luaL_prepbuffsize(b, n);
	return c->ctx != NULL ? p : NULL;
}

/* Move up to n buffered bytes into b; *moved says how many. room() may run
 * a finalizer that reads from this conn too (or closes it): what is
 * buffered is measured again after it, never before. */
static int take_buffered(ltls_conn *c, luaL_Buffer *b, size_t n, size_t *moved)
{
	char *p = room(b, c, n);
	size_t avail;
	*moved = 0;
	if (p == NULL)
		return E_CLOSED;
	avail = c->rlast - c->rfirst;
	if (n > avail)
		n = avail;
	if (n > 0)
		memcpy(p, c->rbuf + c->rfirst, n);
	luaL_addsize(b, n);
	c->rfirst += n;
	*moved = n;
	return E_OK;
}

/* With nothing buffered and at least a record's worth wanted, decrypt
 * straight into the result instead of into the buffer and then copying.
 * libtls is always offered a whole record's room (LTLS_RBUF_SIZE), as in
 * fill(), so it never holds back plaintext that dirty() and the
 * descriptor's readiness could not show: the area reserved is the count
 * (up to LTLS_RESERVE_MAX, so that a huge count reads until the peer stops
 * instead of failing to allocate) plus one record, and what the last
 * record brings past the count goes to the buffer. */
#define LTLS_RESERVE_MAX (1024 * 1024)
static int read_into_result(ltls_conn *c, luaL_Buffer *b, size_t *wanted, double deadline)
{
	size_t reserve = *wanted < LTLS_RESERVE_MAX ? *wanted : LTLS_RESERVE_MAX;
	char *p = room(b, c, reserve + LTLS_RBUF_SIZE);
	ssize_t n;
	size_t got, take;
	if (p == NULL)
		return E_CLOSED;
	/* a finalizer run by room() may have read from this conn and left
	 * bytes buffered: they come before the next record (the caller's
	 * loop takes them) */
	if (c->rlast > c->rfirst)
		return E_OK;
	if ((n = read_record(c, p, deadline)) < 0)
		return (int)n;
	got = (size_t)n;
	take = got < *wanted ? got : *wanted;
	if (got > take && keep_leftover(c, p + take, got - take) != E_OK)
		return E_FAIL;
	luaL_addsize(b, take);
	*wanted -= take;
	return E_OK;
}

static int recv_count(ltls_conn *c, luaL_Buffer *b, size_t wanted, double deadline)
{
	int direct = wanted >= LTLS_RBUF_SIZE;  /* stays on once the area is reserved */
	while (wanted > 0) {
		size_t avail = c->rlast - c->rfirst;
		int r;
		if (avail > 0) {
			size_t moved;
			if ((r = take_buffered(c, b, avail < wanted ? avail : wanted, &moved)) != E_OK)
				return r;
			wanted -= moved;
			continue;
		}
		r = direct ? read_into_result(c, b, &wanted, deadline) : fill(c, deadline);
		if (r != E_OK)
			return r;
	}
	return E_OK;
}

/* The count of buffered bytes up to and including the next LF (all of
 * them when none is buffered); *has_lf says whether an LF ends them. */
static size_t line_span(const ltls_conn *c, int *has_lf)
{
	size_t avail = c->rlast - c->rfirst;
	const char *start, *lf;
	*has_lf = 0;
	if (avail == 0)
		return 0;
	start = c->rbuf + c->rfirst;
	if ((lf = memchr(start, '\n', avail)) == NULL)
		return avail;
	*has_lf = 1;
	return (size_t)(lf - start) + 1;
}

/* Up to the next LF, without it ("*l", which also drops every CR, as
 * LuaSocket does) or with it ("*L"). The line, prefix included, may not
 * pass c->max_line: a peer that never sends LF cannot grow it further. */
static int recv_line(ltls_conn *c, luaL_Buffer *b, int keep_newline, double deadline)
{
	for (;;) {
		int has_lf;
		size_t span = line_span(c, &has_lf), made, i, kept = 0;
		char *p = NULL;
		if (span > 0) {
			if ((p = room(b, c, span)) == NULL)
				return E_CLOSED;
			/* room() may have run a finalizer that read from this
			 * conn: measure again, and make more room if it grew */
			made = span;
			if ((span = line_span(c, &has_lf)) > made)
				continue;
		}
		if (span > 0) {
			const char *start = c->rbuf + c->rfirst;
			for (i = 0; i < span; i++)
				if (keep_newline || (start[i] != '\r' && start[i] != '\n'))
					p[kept++] = start[i];
			luaL_addsize(b, kept);
			c->rfirst += span;
			if (luaL_bufflen(b) > c->max_line + (keep_newline && has_lf ? 1 : 0))
				return E_LINETOOLONG;
			if (has_lf)
				return E_OK;
		}
		{
			int r = fill(c, deadline);
			if (r != E_OK)
				return r;
		}
	}
}

/* What is buffered, then every record decrypted straight into the result
 * (always a whole record's room, as in fill()) until the peer closes. */
static int recv_all(ltls_conn *c, luaL_Buffer *b, double deadline)
{
	for (;;) {
		char *p;
		ssize_t n;
		/* what is buffered comes first, also what a finalizer run by
		 * room() left there by reading from this conn */
		while (c->rlast > c->rfirst) {
			size_t moved;
			int r = take_buffered(c, b, c->rlast - c->rfirst, &moved);
			if (r != E_OK)
				return r;
		}
		if ((p = room(b, c, LTLS_RBUF_SIZE)) == NULL)
			return E_CLOSED;
		if (c->rlast > c->rfirst)
			continue;
		n = read_record(c, p, deadline);
		if (n == E_CLOSED)
			return E_OK;
		if (n < 0)
			return (int)n;
		luaL_addsize(b, (size_t)n);
	}
}

/* nil, the error and an empty partial result: recv_direct runs only with
 * nothing taken yet. */
static int direct_failed(lua_State *L, ltls_conn *c, int r)
{
	lua_pushnil(L);
	push_error(L, c, r, "receive");
	lua_pushliteral(L, "");
	return 3;
}

/* receive(n) without a prefix, when one buffer refill (a TLS record) holds
 * the n bytes: the result string is made straight from the bytes read,
 * without a luaL_Buffer (a second copy, and a heap box past 1 KiB). With
 * nothing buffered, the refill goes to the C stack, so the heap buffer is
 * allocated only for bytes left over. Once records come longer than the
 * counts asked for, refills go to the heap buffer instead: the leftover
 * would otherwise be copied there from the stack, record after record.
 * Returns the count of Lua results, or -1 to take the general path with
 * whatever is buffered. */
static int recv_direct(lua_State *L, ltls_conn *c, double deadline)
{
	char stack[LTLS_RBUF_SIZE];
	lua_Integer n = lua_tointeger(L, 2);
	size_t have;
	if (n <= 0 || (size_t)n > LTLS_RBUF_SIZE)
		return -1;
	if (c->rbuf == NULL && !(c->flags & LTLS_F_LONG_RECORDS)) {  /* nothing buffered */
		size_t take;
		int r;
		c->rbuf = stack;  /* taken back below, before any Lua call */
		r = fill(c, deadline);
		have = r == E_OK ? c->rlast : 0;
		c->rbuf = NULL;
		c->rfirst = c->rlast = 0;
		set_flag(c, LTLS_F_LONG_RECORDS, have > (size_t)n);
		/* a record shorter than n is kept whole for the general path */
		take = have >= (size_t)n ? (size_t)n : 0;
		/* out of memory: the record is lost, so the failure is final, and
		 * reported as on the other read paths */
		if (have > take && keep_leftover(c, stack + take, have - take) != E_OK)
			r = E_FAIL;
		if (r != E_OK)
			return direct_failed(L, c, r);
		if (take == 0)
			return -1;
		lua_pushlstring(L, stack, take);
		return 1;
	}
	if (c->rlast == c->rfirst) {
		int r = fill(c, deadline);
		if (r != E_OK)
			return direct_failed(L, c, r);
		set_flag(c, LTLS_F_LONG_RECORDS, c->rlast > (size_t)n);
	}
	have = c->rlast - c->rfirst;
	if (have < (size_t)n)
		return -1;
	/* taken before the push: a finalizer the push runs may read from this
	 * conn or close it, which frees rbuf; 5.3+ copy before that can run,
	 * older Luas after (LTLS_PUSH_STEPS_FIRST), so there the bytes go to
	 * the stack first */
	c->rfirst += (size_t)n;
	if (LTLS_PUSH_STEPS_FIRST) {
		memcpy(stack, c->rbuf + c->rfirst - (size_t)n, (size_t)n);
		lua_pushlstring(L, stack, (size_t)n);
	} else
		lua_pushlstring(L, c->rbuf + c->rfirst - (size_t)n, (size_t)n);
	return 1;
}

/* nil, the conn's stored failure, and the partial result given. */
static int failed(lua_State *L, ltls_conn *c, const char *partial, size_t len)
{
	lua_pushnil(L);
	lua_pushstring(L, c->failure);
	lua_pushlstring(L, partial, len);
	return 3;
}

/* conn:receive([pattern [, prefix]]) with LuaSocket's patterns and returns. */
static int receive(lua_State *L)
{
	ltls_conn *c = ltls_checkconn(L, 1);
	/* receive(n), the bulk reader's call, skips the general set-up */
	int count_only = lua_gettop(L) == 2 && lua_type(L, 2) == LUA_TNUMBER;
	size_t plen = 0;
	const char *prefix = "";
	luaL_Buffer b;
	double deadline;
	int r;
	if (!count_only) {
		lua_settop(L, 3);  /* the buffer's placeholder must not land on an argument */
		prefix = luaL_optlstring(L, 3, "", &plen);
	}
	if (c->ctx == NULL) {  /* as LuaSocket: no partial result from a closed conn */
		lua_pushnil(L);
		lua_pushliteral(L, "closed");
		return 2;
	}
	if (c->failure[0] != '\0')  /* final: libtls is not called again */
		return failed(L, c, prefix, plen);
	deadline = ltls_deadline(c->timeout);
	if (c->state == LTLS_HANDSHAKING && (r = run_handshake(c, deadline)) != E_OK) {
		lua_pushnil(L);
		push_error(L, c, r, "handshake");
		lua_pushlstring(L, prefix, plen);
		return 3;
	}
	/* a failed handshake reports itself, not the policy that never ran */
	if (c->flags & LTLS_F_CHECK) {
		lua_pushnil(L);
		lua_pushliteral(L, "policy: the certificate policy has not run yet; "
		    "call conn:handshake() before receive()");
		lua_pushlstring(L, prefix, plen);
		return 3;
	}
	if (plen == 0 && lua_type(L, 2) == LUA_TNUMBER && (r = recv_direct(L, c, deadline)) >= 0)
		return r;
	lua_settop(L, 3);
	luaL_buffinit(L, &b);
	luaL_addlstring(&b, prefix, plen);  /* may run a finalizer: see room() */
	if (c->ctx == NULL)
		r = E_CLOSED;
	else if (lua_type(L, 2) == LUA_TNUMBER) {
		lua_Integer n = luaL_checkinteger(L, 2);
		luaL_argcheck(L, n >= 0, 2, "byte count must not be negative");
		r = (size_t)n > plen ? recv_count(c, &b, (size_t)n - plen, deadline) : E_OK;
	} else {
		const char *p = luaL_optstring(L, 2, "*l");
		if (*p == '*')
			p++;
		if (strcmp(p, "l") == 0)
			r = recv_line(c, &b, 0, deadline);
		else if (strcmp(p, "L") == 0)
			r = recv_line(c, &b, 1, deadline);
		else if (strcmp(p, "a") == 0)
			r = recv_all(c, &b, deadline);
		else
			return luaL_argerror(L, 2, "invalid receive pattern "
			    "(use \"*l\", \"*L\", \"*a\" or a byte count)");
	}
	luaL_pushresult(&b);
	if (r == E_OK && c->ctx != NULL)
		return 1;
	/* the partial result is LuaSocket's third return */
	lua_pushnil(L);
	push_error(L, c, c->ctx == NULL ? E_CLOSED : r, "receive");
	/* a conn closed while receive ran (by a finalizer, which any of these
	 * pushes may run) reports that */
	if (c->ctx == NULL) {
		lua_pushliteral(L, "closed");
		lua_replace(L, -2);
	}
	lua_rotate(L, -3, -1);
	return 3;
}

static int conn_receive(lua_State *L)
{
	int n = receive(L);
	ltls_conn *c = lua_touserdata(L, 1);
	if (c->rbuf != NULL && c->rfirst == c->rlast) {
		free(c->rbuf);
		c->rbuf = NULL;
		c->rfirst = c->rlast = 0;
	}
	return n;
}

/* data:sub(i, j)'s bounds, by string.sub's index rules, as the offsets
 * [*start, *end) of a string of len bytes. */
static void sub_range(lua_Integer i, lua_Integer j, size_t len, size_t *start, size_t *end)
{
	if (i < 0)
		i = (lua_Integer)len + i + 1;
	if (i < 1)
		i = 1;
	if (j < 0)
		j = (lua_Integer)len + j + 1;
	if (j > (lua_Integer)len)
		j = (lua_Integer)len;
	*start = (size_t)i - 1;
	*end = j >= i ? (size_t)j : *start;
}

/* How much of chunk an engine may hand libtls now: it queues whole
 * records, each only if it fits under the limit (an empty queue always
 * takes one); 0 when the queue must be drained first. */
static size_t engine_room(const ltls_conn *c, size_t chunk)
{
	size_t used = ltls_membuf_len(&c->out);
	size_t room = c->mem_limit > used + LTLS_RECORD_OVERHEAD ?
	    c->mem_limit - used - LTLS_RECORD_OVERHEAD : 0;
	if (room == 0 || (room < 1024 && room < chunk && used > 0))
		return 0;
	if (chunk > room)
		chunk = room;
	return chunk > LTLS_RECORD_SIZE ? LTLS_RECORD_SIZE : chunk;
}

/* Write len bytes from p, waiting as the timeout allows; *sent counts what
 * libtls took. E_OK once all went, else the E_ code that stopped it. */
static int write_all(ltls_conn *c, const char *p, size_t len, size_t *sent, double deadline)
{
	while (*sent < len) {
		size_t chunk = len - *sent;
		ssize_t n;
		int r;
		if (c->fd < 0 && (chunk = engine_room(c, chunk)) == 0) {
			c->want = TLS_WANT_POLLOUT;
			return E_WANTWRITE;
		}
		n = tls_write(c->ctx, p + *sent, chunk);
		if (n > 0) {
			*sent += (size_t)n;
			c->want = 0;
			continue;
		}
		if ((r = settle(c, n, deadline)) == E_RETRY)
			continue;
		return r == E_FAIL && is_disconnect(c->io_errno) ? E_CLOSED : r;
	}
	return E_OK;
}

/* nil, the error for code and the last index sent */
static int send_failed(lua_State *L, ltls_conn *c, int code, const char *what, size_t last)
{
	lua_pushnil(L);
	push_error(L, c, code, what);
	lua_pushinteger(L, (lua_Integer)last);
	return 3;
}

/* conn:send(data [, i [, j]]) -> last index sent | nil, err, last index sent */
static int conn_send(lua_State *L)
{
	ltls_conn *c = ltls_checkconn(L, 1);
	size_t len;
	const char *data = luaL_checklstring(L, 2, &len);
	int whole = lua_gettop(L) == 2;  /* send(data), the common call */
	size_t sent = 0, start, end;
	double deadline;
	int r;
	if (whole) {
		start = 0;
		end = len;
	} else
		sub_range(luaL_optinteger(L, 3, 1), luaL_optinteger(L, 4, -1), len, &start, &end);
	if (c->ctx == NULL || c->failure[0] != '\0') {
		lua_pushnil(L);
		/* final: libtls is not called again; a truncated stream means
		 * the peer is gone, which send reports as "closed" */
		if (c->ctx == NULL || strcmp(c->failure, "truncated") == 0)
			lua_pushliteral(L, "closed");
		else
			lua_pushstring(L, c->failure);
		lua_pushinteger(L, (lua_Integer)start);
		return 3;
	}
	deadline = ltls_deadline(c->timeout);
	if (c->state == LTLS_HANDSHAKING && (r = run_handshake(c, deadline)) != E_OK)
		return send_failed(L, c, r, "handshake", start);
	/* a failed handshake reports itself, not the policy that never ran */
	if (c->flags & LTLS_F_CHECK) {
		lua_pushnil(L);
		lua_pushliteral(L, "policy: the certificate policy has not run yet; "
		    "call conn:handshake() before send()");
		lua_pushinteger(L, (lua_Integer)start);
		return 3;
	}
	if ((r = write_all(c, data + start, end - start, &sent, deadline)) == E_OK) {
		lua_pushinteger(L, (lua_Integer)end);
		return 1;
	}
	return send_failed(L, c, r, "send", start + sent);
}

/* Send close_notify within the timeout (5 s at most), then free. */
static void close_conn(ltls_conn *c)
{
	if (c->state == LTLS_ESTABLISHED) {
		double deadline = ltls_deadline(c->timeout < 0 || c->timeout > 5 ? 5 : c->timeout);
		for (;;) {
			int r = tls_close(c->ctx);
			if (r == 0 || c->fd < 0 || c->timeout == 0 ||
			    settle(c, r, deadline) != E_RETRY)
				break;
		}
	}
	release(c, 0);
}

/* conn:close() -> true */
static int conn_close(lua_State *L)
{
	close_conn(ltls_checkconn(L, 1));
	lua_pushboolean(L, 1);
	return 1;
}

static int conn_gc(lua_State *L)
{
	ltls_conn *c = ltls_checkconn(L, 1);
	release(c, c->fd >= 0);
	ltls_membuf_free(&c->in);
	ltls_membuf_free(&c->out);
	return 0;
}

static int conn_settimeout(lua_State *L)
{
	ltls_conn *c = ltls_checkconn(L, 1);
	c->timeout = ltls_opttimeout(L, 2);
	lua_pushboolean(L, 1);
	return 1;
}

/* conn:setmaxline(bytes): the longest line "*l"/"*L" return. */
static int conn_setmaxline(lua_State *L)
{
	ltls_conn *c = ltls_checkconn(L, 1);
	lua_Integer n = luaL_checkinteger(L, 2);
	luaL_argcheck(L, n >= 1 && n <= 1024 * 1024 * 1024, 2,
	    "line limit must be between 1 byte and 1 GiB");
	c->max_line = (size_t)n;
	return 0;
}

static int conn_getmaxline(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)ltls_checkconn(L, 1)->max_line);
	return 1;
}

static int conn_gettimeout(lua_State *L)
{
	ltls_conn *c = ltls_checkconn(L, 1);
	if (c->timeout < 0)
		lua_pushnil(L);
	else
		lua_pushnumber(L, c->timeout);
	return 1;
}

/* cqueues' pollable protocol: pollfd(), events(), timeout(). */
static int conn_timeout(lua_State *L)
{
	ltls_conn *c = ltls_checkconn(L, 1);
	if (c->timeout <= 0)
		lua_pushnil(L);
	else
		lua_pushnumber(L, c->timeout);
	return 1;
}

static int conn_getfd(lua_State *L)
{
	lua_pushinteger(L, ltls_checkconn(L, 1)->fd);
	return 1;
}

static int conn_events(lua_State *L)
{
	ltls_conn *c = ltls_checkconn(L, 1);
	if (c->want == TLS_WANT_POLLOUT)
		lua_pushliteral(L, "w");
	else
		lua_pushliteral(L, "r");
	return 1;
}

static int conn_dirty(lua_State *L)
{
	ltls_conn *c = ltls_checkconn(L, 1);
	lua_pushboolean(L, c->rlast > c->rfirst);
	return 1;
}

static int conn_info(lua_State *L)
{
	ltls_conn *c = checkopen(L);
	if (c->state != LTLS_ESTABLISHED) {
		lua_pushnil(L);
		lua_pushliteral(L, "handshake not done");
		return 2;
	}
	return ltls_push_info(L, c);
}

static int conn_peer(lua_State *L)
{
	ltls_conn *c = checkopen(L);
	if (c->state != LTLS_ESTABLISHED) {
		lua_pushnil(L);
		lua_pushliteral(L, "handshake not done");
		return 2;
	}
	return ltls_push_peer(L, c);
}

static const char *mode_of(const ltls_conn *c)
{
	return (c->flags & LTLS_F_SERVER) ? "server" : "client";
}

static int is_socket(const ltls_conn *c)
{
	return c->fd >= 0 || (c->flags & LTLS_F_SOCKET);
}

/* conn:mode() -> "client" | "server" */
static int conn_mode(lua_State *L)
{
	lua_pushstring(L, mode_of(ltls_checkconn(L, 1)));
	return 1;
}

/* conn:kind() -> "socket" (it has, or had, a descriptor) | "engine" */
static int conn_kind(lua_State *L)
{
	lua_pushstring(L, is_socket(ltls_checkconn(L, 1)) ? "socket" : "engine");
	return 1;
}

/* conn:config() -> the tls.config the conn was made from: a client's own,
 * a server-side conn's server's (uservalue 1 of each) */
static int conn_config(lua_State *L)
{
	ltls_conn *c = ltls_checkconn(L, 1);
	lua_getiuservalue(L, 1, 1);
	if (c->flags & LTLS_F_SERVER)
		lua_getiuservalue(L, -1, 1);
	return 1;
}

static int conn_tostring(lua_State *L)
{
	static const char *const states[] = { "handshaking", "established", "closed" };
	ltls_conn *c = ltls_checkconn(L, 1);
	if (is_socket(c))
		lua_pushfstring(L, "tls.conn (%s, %s, fd %d): %p",
		    mode_of(c), states[c->state], c->fd, (void *)c);
	else
		lua_pushfstring(L, "tls.engine (%s, %s): %p", mode_of(c), states[c->state], (void *)c);
	return 1;
}

/* setfd and connect give a conn its descriptor once, before any byte went
 * over memory: a handshake begun through feed()/drain() cannot move. */
static void check_no_transport(lua_State *L, ltls_conn *c, const char *what)
{
	if (c->fd >= 0 || c->state != LTLS_HANDSHAKING || ltls_membuf_len(&c->in) || ltls_membuf_len(&c->out))
		luaL_error(L, "%s: the connection already has a transport", what);
}

/* conn:setfd(fd): the connection takes the descriptor over (tls.wrap). */
static int conn_setfd(lua_State *L)
{
	ltls_conn *c = checkopen(L);
	lua_Integer fd = luaL_checkinteger(L, 2);
	luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 2, "not a descriptor");
	check_no_transport(L, c, "setfd");
	c->fd = (int)fd;
	return 0;
}

/* conn:connect(host, port [, timeout]) opens the TCP connection under it. */
static int conn_connect(lua_State *L)
{
	ltls_conn *c = checkopen(L);
	const char *host = luaL_checkstring(L, 2);
	const char *port = luaL_checkstring(L, 3);
	double timeout = ltls_opttimeout(L, 4);
	char err[256];
	int fd;
	if (c->flags & LTLS_F_SERVER)
		return luaL_error(L, "connect: only a client connection can connect "
		    "(a server's comes from listener:accept() or tls.wrap)");
	check_no_transport(L, c, "connect");
	fd = ltls_tcp_connect(host, port, timeout, err, sizeof(err));
	if (fd < 0) {
		lua_pushnil(L);
		lua_pushstring(L, err);
		return 2;
	}
	c->fd = fd;
	lua_pushboolean(L, 1);
	return 1;
}

/* Memory transport (engine): feed(bytes) -> true | nil, "buffer full" */
static int conn_feed(lua_State *L)
{
	ltls_conn *c = ltls_checkconn(L, 1);
	size_t n;
	int r;
	const char *p = luaL_checklstring(L, 2, &n);
	if (c->fd >= 0)
		return luaL_error(L, "feed: this connection reads from a socket, not from feed()");
	if (c->ctx == NULL) {
		lua_pushnil(L);
		lua_pushliteral(L, "closed");
		return 2;
	}
	if (c->flags & LTLS_F_INPUT_ENDED)
		return luaL_error(L, "feed: input was already ended with feed_eof()");
	if ((r = ltls_membuf_push(&c->in, p, n, c->mem_limit)) != 0) {
		lua_pushnil(L);
		if (r == LTLS_MEMBUF_NOMEM) {
			lua_pushliteral(L, "feed: out of memory");
			return 2;
		}
		/* all or nothing: none of these bytes were taken */
		lua_pushfstring(L, "buffer full: %d bytes of input are waiting and "
		    "%d more would pass the limit of %d; call receive/handshake to "
		    "consume them first, or feed less at a time",
		    (int)ltls_membuf_len(&c->in), (int)n, (int)c->mem_limit);
		return 2;
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int conn_feed_eof(lua_State *L)
{
	ltls_conn *c = ltls_checkconn(L, 1);
	c->flags |= LTLS_F_INPUT_ENDED;
	return 0;
}

/* drain([max]) -> the ciphertext waiting to be sent ("" when none) */
static int conn_drain(lua_State *L)
{
	ltls_conn *c = ltls_checkconn(L, 1);
	size_t n = ltls_membuf_len(&c->out);
	lua_Integer max = luaL_optinteger(L, 2, (lua_Integer)n);
	if (max >= 0 && (size_t)max < n)
		n = (size_t)max;
	if (LTLS_PUSH_STEPS_FIRST) {
		/* the push would run finalizers before it copies, and one that
		 * sends on this conn writes where the bytes taken were: copy them
		 * into room made (and the queue measured again) first */
		luaL_Buffer b;
		char *p = luaL_buffinitsize(L, &b, n);
		if (n > ltls_membuf_len(&c->out))
			n = ltls_membuf_len(&c->out);
		memcpy(p, ltls_membuf_take(&c->out, n), n);
		luaL_pushresultsize(&b, n);
		return 1;
	}
	/* taken before the push, which can run a finalizer (the bytes stay
	 * where they are until the queue is next pushed to) */
	lua_pushlstring(L, ltls_membuf_take(&c->out, n), n);
	return 1;
}

static int conn_pending(lua_State *L)
{
	ltls_conn *c = ltls_checkconn(L, 1);
	lua_pushinteger(L, (lua_Integer)ltls_membuf_len(&c->out));
	lua_pushinteger(L, (lua_Integer)ltls_membuf_len(&c->in));
	return 2;
}

static int conn_setlimit(lua_State *L)
{
	ltls_conn *c = ltls_checkconn(L, 1);
	lua_Integer n = luaL_checkinteger(L, 2);
	luaL_argcheck(L, n >= 16 * 1024 + 512 && n <= 64 * 1024 * 1024, 2,
	    "buffer limit must be between 16896 bytes (one TLS record) and 64 MiB");
	c->mem_limit = (size_t)n;
	return 0;
}

static int start_client(lua_State *L, ltls_conn *c, ltls_config *cfg, const char *servername)
{
	if ((c->ctx = tls_client()) == NULL)
		return luaL_error(L, "tls client: out of memory");
	/* libtls writes the session through the config's descriptor at the end
	 * of the handshake: hold it open while this conn lives */
	if ((c->session = cfg->session) != NULL)
		c->session->refs++;
	if (tls_configure(c->ctx, cfg->cfg) != 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "configure: %s", tls_error(c->ctx));
		release(c, 0);
		return 2;
	}
	if (tls_connect_cbs(c->ctx, ltls_read_cb, ltls_write_cb, c, servername) != 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "connect: %s", tls_error(c->ctx));
		release(c, 0);
		return 2;
	}
	return 0;
}

/* core.client(config, servername) -> conn over memory until connect/setfd. */
int ltls_conn_client(lua_State *L)
{
	ltls_config *cfg = ltls_checkconfig(L, 1);
	const char *servername = luaL_optstring(L, 2, NULL);
	int verify = lua_toboolean(L, 3);
	ltls_conn *c = ltls_conn_alloc(L, 1, LTLS_CLIENT);
	int r;
	/* the allocation may have run a finalizer that closed the config */
	cfg = ltls_checkconfig(L, 1);
	set_flag(c, LTLS_F_VERIFY, verify);
	if ((r = start_client(L, c, cfg, servername)) != 0)
		return r;
	return 1;
}

/* Set up c, from ltls_conn_alloc(L, s's index), as a connection of s. */
int ltls_conn_start_server(lua_State *L, ltls_conn *c, ltls_server *s)
{
	if (tls_accept_cbs(s->ctx, &c->ctx, ltls_read_cb, ltls_write_cb, c) != 0) {
		char buf[1024];
		const char *msg = error_text(s->ctx, buf, sizeof(buf));
		lua_pushnil(L);
		lua_pushfstring(L, "accept: %s", msg ? msg : "unknown TLS error");
		release(c, 0);
		return 2;
	}
	return 0;
}

/* conn:setcheck(check): check(conn) must pass before data flows. The next
 * handshake() that finds the handshake done runs it (see run_check); until
 * it passed, receive and send refuse. setcheck(nil) drops it. */
static int conn_setcheck(lua_State *L)
{
	ltls_conn *c = checkopen(L);
	lua_settop(L, 2);
	if (!lua_isnil(L, 2) && lua_type(L, 2) != LUA_TFUNCTION &&
	    luaL_getmetafield(L, 2, "__call") == LUA_TNIL)
		luaL_argerror(L, 2, "a function, a callable or nil expected");
	lua_settop(L, 2);
	set_flag(c, LTLS_F_CHECK, !lua_isnil(L, 2));
	lua_setiuservalue(L, 1, 2);
	return 0;
}

/* core.interpose(name, fn) -> the method it replaces (or nil): the one way
 * the Lua layer adds or wraps a conn method (cqueues' interpose). */
int ltls_conn_interpose(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	luaL_getmetatable(L, LTLS_CONN);
	lua_getfield(L, -1, "__index");
	lua_getfield(L, -1, name);
	lua_pushvalue(L, 2);
	lua_setfield(L, -3, name);
	return 1;
}

static const luaL_Reg conn_methods[] = {
	{ "setcheck", conn_setcheck },
	{ "mode", conn_mode },
	{ "kind", conn_kind },
	{ "config", conn_config },
	{ "handshake", conn_handshake },
	{ "receive", conn_receive },
	{ "send", conn_send },
	{ "close", conn_close },
	{ "settimeout", conn_settimeout },
	{ "setmaxline", conn_setmaxline },
	{ "getmaxline", conn_getmaxline },
	{ "gettimeout", conn_gettimeout },
	{ "timeout", conn_timeout },
	{ "getfd", conn_getfd },
	{ "pollfd", conn_getfd },
	{ "events", conn_events },
	{ "dirty", conn_dirty },
	{ "info", conn_info },
	{ "peer", conn_peer },
	{ "setfd", conn_setfd },
	{ "connect", conn_connect },
	{ "feed", conn_feed },
	{ "feed_eof", conn_feed_eof },
	{ "drain", conn_drain },
	{ "pending", conn_pending },
	{ "setlimit", conn_setlimit },
	{ NULL, NULL }
};

void ltls_conn_open(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__gc", conn_gc },
		{ "__close", conn_gc },
		{ "__tostring", conn_tostring },
		{ NULL, NULL }
	};
	luaL_newmetatable(L, LTLS_CONN);
	lua_pushvalue(L, -1);
	luaL_setfuncs(L, meta, 1);
	luaL_newlibtable(L, conn_methods);
	lua_pushvalue(L, -2);
	luaL_setfuncs(L, conn_methods, 1);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}
