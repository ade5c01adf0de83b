/*
 * The portable system-call paths declared in portable.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "portable.h"

#ifndef LTLS_HAVE_SOCK_FLAGS
/* Make fd close-on-exec and non-blocking; 0, or -1 with errno (fd closed). */
static int set_cloexec_nonblock(int fd)
{
	int fl;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1 ||
	    (fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return 0;
}
#endif

int ltls_socket(int domain, int type, int protocol)
{
#ifdef LTLS_HAVE_SOCK_FLAGS
	return socket(domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
#else
	/* not atomic: a fork+exec in another thread in between inherits fd */
	int fd = socket(domain, type, protocol);
	if (fd < 0 || set_cloexec_nonblock(fd) != 0)
		return -1;
	return fd;
#endif
}

int ltls_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
#ifdef LTLS_HAVE_SOCK_FLAGS
	return accept4(fd, addr, len, SOCK_CLOEXEC | SOCK_NONBLOCK);
#else
	int nfd = accept(fd, addr, len);
	if (nfd < 0 || set_cloexec_nonblock(nfd) != 0)
		return -1;
	return nfd;
#endif
}

ssize_t ltls_send(int fd, const void *buf, size_t len)
{
#if defined(MSG_NOSIGNAL)
	return send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
#elif defined(SO_NOSIGPIPE)
	/* set on every send: the descriptor may have come from tls.wrap */
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one)) != 0)
		return -1;
	return send(fd, buf, len, MSG_DONTWAIT);
#else
#error "no way to send without SIGPIPE on this platform (neither MSG_NOSIGNAL nor SO_NOSIGPIPE)"
#endif
}

void *ltls_memmem(const void *hay, size_t hlen, const void *needle, size_t nlen)
{
#ifdef LTLS_HAVE_MEMMEM
	return memmem(hay, hlen, needle, nlen);
#else
	const unsigned char *h = hay, *n = needle;
	size_t i;
	if (nlen == 0)
		return (void *)hay;
	for (i = 0; nlen <= hlen && i <= hlen - nlen; i++)
		if (h[i] == n[0] && memcmp(h + i, n, nlen) == 0)
			return (void *)(h + i);
	return NULL;
#endif
}

int ltls_mkstemp(char *tmpl)
{
#ifdef LTLS_HAVE_MKOSTEMP
	return mkostemp(tmpl, O_CLOEXEC);
#else
	int fd = mkstemp(tmpl);
	if (fd >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
		int saved = errno;
		close(fd);
		unlink(tmpl);
		errno = saved;
		return -1;
	}
	return fd;
#endif
}
