/*
 * System calls that are not the same everywhere, behind one name each.
 * Where the fast Linux/BSD call exists it is used (socket flags, accept4,
 * memmem, mkostemp); elsewhere, or when built with -DLTLS_PORTABLE (`make
 * PORTABLE=1`, which proves the fallbacks on Linux), the POSIX path is:
 * socket/accept + fcntl, a local memmem, mkstemp + fcntl. Sends never raise
 * SIGPIPE: MSG_NOSIGNAL where it exists, else SO_NOSIGPIPE (macOS).
 */
#ifndef LTLS_PORTABLE_H
#define LTLS_PORTABLE_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>

#if !defined(LTLS_PORTABLE) && defined(SOCK_CLOEXEC) && defined(SOCK_NONBLOCK)
#define LTLS_HAVE_SOCK_FLAGS 1  /* socket() flags and accept4() */
#endif

#if !defined(LTLS_PORTABLE) && (defined(__linux__) || defined(__FreeBSD__) || \
    defined(__OpenBSD__) || defined(__NetBSD__) || defined(__APPLE__))
#define LTLS_HAVE_MEMMEM 1
#define LTLS_HAVE_MKOSTEMP 1
#endif

/* Whether this build forced the portable paths (tls.core.portable). */
#ifdef LTLS_PORTABLE
#define LTLS_PORTABLE_BUILD 1
#else
#define LTLS_PORTABLE_BUILD 0
#endif

/* socket(2), close-on-exec and non-blocking; -1 and errno on failure. */
int ltls_socket(int domain, int type, int protocol);

/* accept(2), the new descriptor close-on-exec and non-blocking. */
int ltls_accept(int fd, struct sockaddr *addr, socklen_t *len);

/* send(2) that never blocks and never raises SIGPIPE. */
ssize_t ltls_send(int fd, const void *buf, size_t len);

/* memmem(3). */
void *ltls_memmem(const void *hay, size_t hlen, const void *needle, size_t nlen);

/* mkstemp(3) with the new descriptor close-on-exec. */
int ltls_mkstemp(char *tmpl);

#endif
