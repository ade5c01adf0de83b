/*
 * The transport under libtls: its read/write callbacks and the wait between
 * wants. A connection either owns a descriptor or two bounded memory queues;
 * libtls never touches the descriptor itself, so writes never raise SIGPIPE
 * (ltls_send: MSG_NOSIGNAL, or SO_NOSIGPIPE; no change to the host's signal
 * handlers) and every call is non-blocking: waiting happens only in
 * ltls_wait, under the caller's timeout.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

#include "ltls.h"

double ltls_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double ltls_deadline(double timeout)
{
	return timeout < 0 ? -1 : ltls_now() + timeout;
}

/* The one rule for a timeout argument, in C (conn:settimeout, conn:connect,
 * listener:accept) and in Lua (through core.timeout_problem): nil, none or
 * a negative number blocks (LuaSocket's rule), 0 never waits, and anything
 * else must be a number that is not NaN, from which no deadline follows.
 * Returns NULL for a good value, else what is wrong with it. */
const char *ltls_timeout_problem(lua_State *L, int idx)
{
	double t;
	if (lua_isnoneornil(L, idx))
		return NULL;
	if (lua_type(L, idx) != LUA_TNUMBER)
		return lua_pushfstring(L, "must be a number of seconds, got %s", luaL_typename(L, idx));
	t = lua_tonumber(L, idx);
	return t == t ? NULL : "must be a number of seconds, got NaN";
}

double ltls_opttimeout(lua_State *L, int arg)
{
	const char *why = ltls_timeout_problem(L, arg);
	double t;
	if (why != NULL)
		luaL_argerror(L, arg, lua_pushfstring(L, "timeout %s", why));
	t = luaL_optnumber(L, arg, -1);
	return t < 0 ? -1 : t;
}

size_t ltls_membuf_len(const ltls_membuf *b)
{
	return b->tail - b->head;
}

void ltls_membuf_free(ltls_membuf *b)
{
	free(b->data);
	b->data = NULL;
	b->head = b->tail = b->cap = 0;
}

/* Take the n bytes (n <= the length) at the front of b out of it: the
 * pointer returned stays valid until b is next pushed to. */
const char *ltls_membuf_take(ltls_membuf *b, size_t n)
{
	const char *p = b->data != NULL ? b->data + b->head : "";
	b->head += n;
	if (b->head == b->tail)
		b->head = b->tail = 0;
	return p;
}

/* Append n bytes unless that would pass limit (LTLS_MEMBUF_FULL) or memory
 * ran out (LTLS_MEMBUF_NOMEM); compacts before it grows. */
int ltls_membuf_push(ltls_membuf *b, const char *p, size_t n, size_t limit)
{
	if (ltls_membuf_len(b) + n > limit)
		return LTLS_MEMBUF_FULL;
	if (b->tail + n > b->cap && b->head > 0) {
		memmove(b->data, b->data + b->head, b->tail - b->head);
		b->tail -= b->head;
		b->head = 0;
	}
	if (b->tail + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *d;
		while (cap < b->tail + n)
			cap *= 2;
		if ((d = realloc(b->data, cap)) == NULL)
			return LTLS_MEMBUF_NOMEM;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->tail, p, n);
	b->tail += n;
	return 0;
}

/* Keep the first bytes the peer sent, so a failed handshake can say that the
 * peer spoke plain HTTP whatever words the TLS library used for it. */
static void keep_head(ltls_conn *c, const void *buf, size_t n)
{
	size_t room = sizeof(c->head) - c->head_len;
	if (n > room)
		n = room;
	memcpy(c->head + c->head_len, buf, n);
	c->head_len += (unsigned char)n;
}

ssize_t ltls_read_cb(struct tls *ctx, void *buf, size_t len, void *arg)
{
	ltls_conn *c = arg;
	ssize_t n;
	(void)ctx;
	if (c->fd < 0) {
		size_t avail = ltls_membuf_len(&c->in);
		if (avail == 0) {
			if (c->flags & LTLS_F_INPUT_ENDED) {
				c->flags |= LTLS_F_PEER_EOF;
				return 0;
			}
			return TLS_WANT_POLLIN;
		}
		if (len > avail)
			len = avail;
		memcpy(buf, ltls_membuf_take(&c->in, len), len);
		if (c->head_len < sizeof(c->head))
			keep_head(c, buf, len);
		return (ssize_t)len;
	}
	do
		n = recv(c->fd, buf, len, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return TLS_WANT_POLLIN;
		c->io_errno = errno;
		return -1;
	}
	if (n == 0)
		c->flags |= LTLS_F_PEER_EOF;
	else if (c->head_len < sizeof(c->head))
		keep_head(c, buf, (size_t)n);
	return n;
}

ssize_t ltls_write_cb(struct tls *ctx, const void *buf, size_t len, void *arg)
{
	ltls_conn *c = arg;
	ssize_t n;
	(void)ctx;
	if (c->fd < 0) {
		/* Take whole writes: a record refused halfway would stay inside
		 * OpenSSL, and no close_notify could follow it. send() checks the
		 * limit before each record instead, so the queue holds at most the
		 * limit plus one record; the slack only guards against runaways. */
		int r = ltls_membuf_push(&c->out, buf, len, c->mem_limit + LTLS_MEM_SLACK);
		if (r == LTLS_MEMBUF_FULL)
			return TLS_WANT_POLLOUT;
		if (r != 0) {
			c->io_errno = ENOMEM;
			return -1;
		}
		return (ssize_t)len;
	}
	do
		n = ltls_send(c->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return TLS_WANT_POLLOUT;
		c->io_errno = errno;
		return -1;
	}
	return n;
}

/* Wait until fd is ready for events (POLLIN/POLLOUT) or the deadline
 * passes (deadline < 0: no limit). Returns 0 when ready (or on a descriptor
 * error, which the next call reports), 1 on timeout, -1 on a poll error. */
int ltls_poll(int fd, short events, double deadline)
{
	struct pollfd pfd;
	int ms, r;
	pfd.fd = fd;
	pfd.events = events;
	for (;;) {
		if (deadline < 0)
			ms = -1;
		else {
			double left = deadline - ltls_now();
			if (left <= 0)
				return 1;
			/* a day at a time: a longer wait (or NaN) would overflow
			 * int; the loop re-reads the clock, so the deadline holds */
			ms = left < 86400 ? (int)(left * 1000) + 1 : 86400 * 1000;
		}
		pfd.revents = 0;
		r = poll(&pfd, 1, ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* Wait until the connection's descriptor is ready for libtls's `want`. */
int ltls_wait(ltls_conn *c, int want, double deadline)
{
	return ltls_poll(c->fd, want == TLS_WANT_POLLIN ? POLLIN : POLLOUT, deadline);
}
