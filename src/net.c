/*
 * Descriptors: outgoing TCP connections with a timeout (every resolved
 * address in turn, IPv6 and IPv4) and listening sockets. All descriptors are
 * close-on-exec and non-blocking; waiting is done with poll under a deadline.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "ltls.h"

typedef struct ltls_listen_socket {
	int fd;
} ltls_listen_socket;

/* Push the address and port of ss, as text and integer. */
static void push_address(lua_State *L, const struct sockaddr_storage *ss)
{
	char addr[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
		port = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
		port = ntohs(sin6->sin6_port);
	}
	lua_pushstring(L, addr);
	lua_pushinteger(L, port);
}

/* Returns a connected descriptor, or -1 with err filled in: "timeout" when
 * the deadline passed, else what failed for the last address tried. */
int ltls_tcp_connect(const char *host, const char *port, double timeout, char *err, size_t errlen)
{
	struct addrinfo hints, *res, *ai;
	double deadline = ltls_deadline(timeout);
	int rc, fd = -1, timed_out = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		/* loopback-only hosts have no configured address: retry without */
		hints.ai_flags = 0;
		if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
			snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
			return -1;
		}
	}
	snprintf(err, errlen, "cannot connect to %s port %s: no address", host, port);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		int soerr = 0, w;
		socklen_t slen = sizeof(soerr);
		fd = ltls_socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0) {
			snprintf(err, errlen, "socket: %s", strerror(errno));
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno != EINPROGRESS) {
			snprintf(err, errlen, "cannot connect to %s port %s: %s", host, port,
			    strerror(errno));
			close(fd);
			fd = -1;
			continue;
		}
		w = ltls_poll(fd, POLLOUT, deadline);
		if (w == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0 &&
		    soerr == 0)
			break;
		if (w == 1) {
			timed_out = 1;
			close(fd);
			fd = -1;
			break;
		}
		snprintf(err, errlen, "cannot connect to %s port %s: %s", host, port,
		    strerror(w == 0 ? soerr : errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (timed_out)
		snprintf(err, errlen, "timeout");
	if (fd >= 0) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return fd;
}

/* core.listen(host, port [, backlog]) -> listener | nil, message */
int ltls_listen(lua_State *L)
{
	const char *host = luaL_checkstring(L, 1);
	const char *port = luaL_checkstring(L, 2);
	int backlog = (int)luaL_optinteger(L, 3, 128);
	struct addrinfo hints, *res, *ai;
	ltls_listen_socket *l;
	int rc, one = 1, saved = 0;

	l = lua_newuserdatauv(L, sizeof(*l), 0);
	l->fd = -1;
	luaL_setmetatable(L, LTLS_LISTENER);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if (strcmp(host, "*") == 0)
		host = NULL;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "listen: cannot resolve %s: %s", host ? host : "*",
		    gai_strerror(rc));
		return 2;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		int fd = ltls_socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0) {
			l->fd = fd;
			break;
		}
		saved = errno;
		close(fd);
	}
	freeaddrinfo(res);
	if (l->fd < 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "listen: cannot listen on %s port %s: %s", host ? host : "*",
		    port, strerror(saved));
		return 2;
	}
	return 1;
}

static ltls_listen_socket *check_listen_socket(lua_State *L)
{
	ltls_listen_socket *l = luaL_checkudata(L, 1, LTLS_LISTENER);
	if (l->fd < 0)
		luaL_error(L, "attempt to use a closed tls listening socket");
	return l;
}

/* listener:accept(server [, timeout]) -> conn (handshake not yet done),
 * peer address, peer port | nil, "timeout" | nil, message */
static int listener_accept(lua_State *L)
{
	ltls_listen_socket *l = check_listen_socket(L);
	ltls_server *s = ltls_checkserver(L, 2);
	double timeout = ltls_opttimeout(L, 3);
	double deadline = ltls_deadline(timeout);
	struct sockaddr_storage ss;
	socklen_t slen;
	int fd, r;
	ltls_conn *c = ltls_conn_alloc(L, 2, LTLS_SERVER_CONN);  /* the box first: no descriptor can leak */
	for (;;) {
		slen = sizeof(ss);
		fd = ltls_accept(l->fd, (struct sockaddr *)&ss, &slen);
		if (fd >= 0)
			break;
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (timeout == 0) {
				lua_pushnil(L);
				lua_pushliteral(L, "wantread");
				return 2;
			}
			r = ltls_poll(l->fd, POLLIN, deadline);
			if (r == 0)
				continue;
			lua_pushnil(L);
			if (r == 1)
				lua_pushliteral(L, "timeout");
			else
				lua_pushfstring(L, "accept: %s", strerror(errno));
			return 2;
		}
		lua_pushnil(L);
		lua_pushfstring(L, "accept: %s", strerror(errno));
		return 2;
	}
	c->fd = fd;
	{
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	if ((r = ltls_conn_start_server(L, c, s)) != 0)
		return r;
	push_address(L, &ss);
	return 3;
}

static int listener_getfd(lua_State *L)
{
	ltls_listen_socket *l = luaL_checkudata(L, 1, LTLS_LISTENER);
	lua_pushinteger(L, l->fd);
	return 1;
}

/* listener:getsockname() -> address, port (the port the system picked for 0) */
static int listener_getsockname(lua_State *L)
{
	ltls_listen_socket *l = check_listen_socket(L);
	struct sockaddr_storage ss;
	socklen_t slen = sizeof(ss);
	if (getsockname(l->fd, (struct sockaddr *)&ss, &slen) != 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "getsockname: %s", strerror(errno));
		return 2;
	}
	push_address(L, &ss);
	return 2;
}

static int listener_close(lua_State *L)
{
	ltls_listen_socket *l = luaL_checkudata(L, 1, LTLS_LISTENER);
	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int listener_tostring(lua_State *L)
{
	ltls_listen_socket *l = luaL_checkudata(L, 1, LTLS_LISTENER);
	if (l->fd < 0)
		lua_pushfstring(L, "tls.listen_socket (closed): %p", (void *)l);
	else
		lua_pushfstring(L, "tls.listen_socket (fd %d): %p", l->fd, (void *)l);
	return 1;
}

void ltls_listener_open(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__gc", listener_close },
		{ "__close", listener_close },
		{ "__tostring", listener_tostring },
		{ NULL, NULL }
	};
	static const luaL_Reg methods[] = {
		{ "accept", listener_accept },
		{ "getfd", listener_getfd },
		{ "getsockname", listener_getsockname },
		{ "close", listener_close },
		{ NULL, NULL }
	};
	luaL_newmetatable(L, LTLS_LISTENER);
	luaL_setfuncs(L, meta, 0);
	luaL_newlib(L, methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}
