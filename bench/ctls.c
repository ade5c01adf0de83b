/*
 * ctls: the raw-libtls reference for the lua-tls benchmarks (bench/run.lua).
 *
 * It plays every role the Lua peers play, the way a C program would use
 * libtls directly: blocking sockets handed to tls_accept_socket /
 * tls_connect_socket, one tls_config built once, and tls_accept_cbs /
 * tls_connect_cbs over memory buffers for the in-memory engine figures.
 * Every role prints one line of key=value pairs that the driver parses.
 *
 *   ctls server-hs   PORT CERT KEY PROTO COUNT WARM
 *   ctls client-hs   HOST PORT PROTO COUNT WARM TRUST [SESSION_FILE]
 *   ctls bulk-server PORT CERT KEY PROTO CONNS
 *   ctls bulk-client HOST PORT PROTO MODE TOTAL CHUNK
 *   ctls hold-server PORT CERT KEY PROTO
 *   ctls hold-client HOST PORT PROTO N WARM TRUST SERVER_PID
 *   ctls engine-hs   CERT KEY CA PROTO COUNT WARM
 *   ctls engine-hold CERT KEY CA PROTO N WARM
 *
 * TRUST is "insecure", "default" (libtls's own: the CA bundle file),
 * "path:DIR" or "file:FILE". PROTO is "tlsv1.2" or "tlsv1.3". MODE is
 * "sink" (the server reads 16 KiB blocks), "sinkrec" (it reads each write's
 * count) or "echo". Handshake clients read to the end of the stream after
 * the handshake (the server closes), so the server's whole handshake, its
 * TLS 1.3 tickets included, is in the count; with SESSION_FILE they close
 * at once instead (openssl s_server -www waits for a request).
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <tls.h>

/* The module's default TLS 1.2 list, so every implementation offers the same. */
#define CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"
#define HEADER_LEN 32
#define READ_BLOCK 16384  /* a "sink" reader's read size, as in bench/peerlib.lua */

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "ctls: %s: %s\n", what, msg ? msg : strerror(errno));
	exit(2);
}

static double now(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
#define WALL() now(CLOCK_MONOTONIC)
#define CPU() now(CLOCK_PROCESS_CPUTIME_ID)

static long rss_kib(long pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;
	if (pid > 0)
		snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/status");
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static struct tls_config *new_config(const char *proto)
{
	struct tls_config *cfg = tls_config_new();
	uint32_t protocols;
	if (cfg == NULL)
		die("tls_config_new", "out of memory");
	if (tls_config_parse_protocols(&protocols, proto) != 0)
		die("protocols", proto);
	tls_config_set_protocols(cfg, protocols);
	if (tls_config_set_ciphers(cfg, CIPHERS) != 0)
		die("ciphers", tls_config_error(cfg));
	return cfg;
}

static struct tls *new_server(const char *cert, const char *key, const char *proto)
{
	struct tls_config *cfg = new_config(proto);
	struct tls *srv = tls_server();
	if (tls_config_set_keypair_file(cfg, cert, key) != 0)
		die("keypair", tls_config_error(cfg));
	if (srv == NULL || tls_configure(srv, cfg) != 0)
		die("server", srv ? tls_error(srv) : "out of memory");
	return srv;
}

static struct tls_config *client_config(const char *proto, const char *trust, const char *session)
{
	struct tls_config *cfg = new_config(proto);
	if (strcmp(trust, "insecure") == 0) {
		tls_config_insecure_noverifycert(cfg);
		tls_config_insecure_noverifyname(cfg);
	} else if (strncmp(trust, "path:", 5) == 0) {
		tls_config_set_ca_mem(cfg, NULL, 0);
		if (tls_config_set_ca_path(cfg, trust + 5) != 0)
			die("ca_path", tls_config_error(cfg));
	} else if (strncmp(trust, "file:", 5) == 0) {
		if (tls_config_set_ca_file(cfg, trust + 5) != 0)
			die("ca_file", tls_config_error(cfg));
	} else if (strcmp(trust, "default") != 0)
		die("trust", "use insecure, default, path:DIR or file:FILE");
	if (session != NULL) {
		int fd = open(session, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0 || tls_config_set_session_fd(cfg, fd) != 0)
			die("session_file", fd < 0 ? NULL : tls_config_error(cfg));
	}
	return cfg;
}

static int listen_on(const char *port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)atoi(port));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 1024) != 0)
		die("listen", NULL);
	printf("READY pid=%ld\n", (long)getpid());
	fflush(stdout);
	return fd;
}

static int accept_one(int lfd)
{
	int fd, one = 1;
	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		if (errno != EINTR && errno != ECONNABORTED)
			die("accept", NULL);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int connect_to(const char *host, const char *port)
{
	struct addrinfo hints, *res;
	int fd, one = 1, rc;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0)
		die("resolve", gai_strerror(rc));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0)
		die("connect", NULL);
	freeaddrinfo(res);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Loop over partial writes; blocking sockets make libtls return only on
 * progress or failure. */
static int write_all(struct tls *t, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = tls_write(t, p, n);
		if (w == TLS_WANT_POLLIN || w == TLS_WANT_POLLOUT)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_exact(struct tls *t, char *p, size_t n)
{
	while (n > 0) {
		ssize_t r = tls_read(t, p, n);
		if (r == TLS_WANT_POLLIN || r == TLS_WANT_POLLOUT)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void drain_to_eof(struct tls *t)
{
	char buf[4096];
	for (;;) {
		ssize_t r = tls_read(t, buf, sizeof(buf));
		if (r == TLS_WANT_POLLIN || r == TLS_WANT_POLLOUT)
			continue;
		if (r <= 0)
			return;
	}
}

static int server_hs(char **a)
{
	struct tls *srv = new_server(a[1], a[2], a[3]);
	int count = atoi(a[4]), warm = atoi(a[5]), lfd = listen_on(a[0]), i, ok = 0, fail = 0;
	double cpu0 = CPU(), wall0 = WALL();
	for (i = 0; i < count + warm; i++) {
		struct tls *c = NULL;
		int fd = accept_one(lfd), good;
		if (i == warm) {
			cpu0 = CPU();
			wall0 = WALL();
		}
		good = tls_accept_socket(srv, &c, fd) == 0 && tls_handshake(c) == 0;
		if (i >= warm)
			good ? ok++ : fail++;
		if (c != NULL) {
			if (good)
				(void)tls_close(c);
			tls_free(c);
		}
		close(fd);
	}
	printf("ok=%d fail=%d cpu=%.6f wall=%.6f\n", ok, fail, CPU() - cpu0, WALL() - wall0);
	return 0;
}

static int client_hs(char **a, int argc)
{
	const char *session = argc > 6 ? a[6] : NULL;
	struct tls_config *cfg = client_config(a[2], a[5], session);
	int count = atoi(a[3]), warm = atoi(a[4]), i, ok = 0, fail = 0, resumed = 0;
	double cpu0 = CPU(), wall0 = WALL();
	char cipher[64] = "?", version[16] = "?";
	for (i = 0; i < count + warm; i++) {
		struct tls *c = tls_client();
		int fd, good;
		if (i == warm) {
			cpu0 = CPU();
			wall0 = WALL();
		}
		if (c == NULL || tls_configure(c, cfg) != 0)
			die("client", c ? tls_error(c) : "out of memory");
		fd = connect_to(a[0], a[1]);
		good = tls_connect_socket(c, fd, "localhost") == 0 && tls_handshake(c) == 0;
		if (!good && i == 0)
			fprintf(stderr, "ctls: handshake: %s\n", tls_error(c));
		if (good) {
			if (i >= warm && tls_conn_session_resumed(c))
				resumed++;
			snprintf(cipher, sizeof(cipher), "%s", tls_conn_cipher(c));
			snprintf(version, sizeof(version), "%s", tls_conn_version(c));
			if (session == NULL)
				drain_to_eof(c);
			(void)tls_close(c);
		}
		if (i >= warm)
			good ? ok++ : fail++;
		tls_free(c);
		close(fd);
	}
	printf("ok=%d fail=%d resumed=%d cpu=%.6f wall=%.6f version=%s cipher=%s\n",
	    ok, fail, resumed, CPU() - cpu0, WALL() - wall0, version, cipher);
	return 0;
}

/* One bulk connection: a HEADER_LEN header "MODE TOTAL CHUNK", then the
 * data; a sink answers "k" once it has everything, the echo returns each
 * chunk as it arrives. */
static void bulk_serve(struct tls *c)
{
	char hdr[HEADER_LEN + 1], mode[8], *buf;
	long total, chunk, block, done = 0;
	if (read_exact(c, hdr, HEADER_LEN) != 0)
		return;
	hdr[HEADER_LEN] = 0;
	if (sscanf(hdr, "%7s %ld %ld", mode, &total, &chunk) != 3 || chunk <= 0)
		return;
	block = strcmp(mode, "sink") == 0 ? READ_BLOCK : chunk;
	if ((buf = malloc((size_t)(block > chunk ? block : chunk))) == NULL)
		die("malloc", NULL);
	while (done < total) {
		long n = total - done < block ? total - done : block;
		if (strcmp(mode, "echo") == 0) {
			if (read_exact(c, buf, (size_t)n) != 0 || write_all(c, buf, (size_t)n) != 0)
				break;
		} else {
			ssize_t r = tls_read(c, buf, (size_t)n);
			if (r == TLS_WANT_POLLIN || r == TLS_WANT_POLLOUT)
				continue;
			if (r <= 0)
				break;
			n = r;
		}
		done += n;
	}
	if (strcmp(mode, "echo") != 0)
		(void)write_all(c, "k", 1);
	free(buf);
}

static int bulk_server(char **a)
{
	struct tls *srv = new_server(a[1], a[2], a[3]);
	int conns = atoi(a[4]), lfd = listen_on(a[0]), i;
	for (i = 0; i < conns; i++) {
		struct tls *c = NULL;
		int fd = accept_one(lfd);
		if (tls_accept_socket(srv, &c, fd) == 0 && tls_handshake(c) == 0) {
			bulk_serve(c);
			(void)tls_close(c);
		}
		tls_free(c);
		close(fd);
	}
	return 0;
}

static int bulk_client(char **a)
{
	struct tls_config *cfg = client_config(a[2], "insecure", NULL);
	struct tls *c = tls_client();
	long total = atol(a[4]), chunk = atol(a[5]), done = 0;
	int echo = strcmp(a[3], "echo") == 0, fd;
	char hdr[HEADER_LEN + 1], *buf = malloc((size_t)chunk), *back = malloc((size_t)chunk);
	double cpu0, wall0;
	if (buf == NULL || back == NULL)
		die("malloc", NULL);
	memset(buf, 'x', (size_t)chunk);
	if (c == NULL || tls_configure(c, cfg) != 0)
		die("client", c ? tls_error(c) : "out of memory");
	fd = connect_to(a[0], a[1]);
	if (tls_connect_socket(c, fd, "localhost") != 0 || tls_handshake(c) != 0)
		die("handshake", tls_error(c));
	snprintf(hdr, sizeof(hdr), "%.7s %ld %ld", a[3], total, chunk);
	memset(hdr + strlen(hdr), ' ', HEADER_LEN - strlen(hdr));
	cpu0 = CPU();
	wall0 = WALL();
	if (write_all(c, hdr, HEADER_LEN) != 0)
		die("write", tls_error(c));
	while (done < total) {
		long n = total - done < chunk ? total - done : chunk;
		if (write_all(c, buf, (size_t)n) != 0)
			die("write", tls_error(c));
		if (echo && read_exact(c, back, (size_t)n) != 0)
			die("read", tls_error(c));
		done += n;
	}
	if (!echo && read_exact(c, back, 1) != 0)
		die("read", tls_error(c));
	printf("bytes=%ld cpu=%.6f wall=%.6f\n", done, CPU() - cpu0, WALL() - wall0);
	(void)tls_close(c);
	tls_free(c);
	close(fd);
	return 0;
}

static int hold_server(char **a)
{
	struct tls *srv = new_server(a[1], a[2], a[3]);
	int lfd = listen_on(a[0]);
	for (;;) {
		struct tls *c = NULL;
		int fd = accept_one(lfd);
		/* kept open until the driver ends the process */
		if (tls_accept_socket(srv, &c, fd) != 0 || tls_handshake(c) != 0) {
			tls_free(c);
			close(fd);
		}
	}
	return 0;
}

static int hold_client(char **a)
{
	struct tls_config *cfg = client_config(a[2], a[5], NULL);
	int n = atoi(a[3]), warm = atoi(a[4]), i, ok = 0;
	long server = atol(a[6]), self0 = 0, srv0 = 0;
	for (i = 0; i < n + warm; i++) {
		struct tls *c = tls_client();
		int fd;
		if (i == warm) {
			usleep(300000);
			self0 = rss_kib(0);
			srv0 = rss_kib(server);
		}
		if (c == NULL || tls_configure(c, cfg) != 0)
			die("client", c ? tls_error(c) : "out of memory");
		fd = connect_to(a[0], a[1]);
		if (tls_connect_socket(c, fd, "localhost") != 0 || tls_handshake(c) != 0)
			die("handshake", tls_error(c));
		if (i >= warm)
			ok++;
	}
	usleep(300000);
	printf("held=%d client_kib=%ld server_kib=%ld\n", ok, rss_kib(0) - self0,
	    rss_kib(server) - srv0);
	fflush(stdout);
	return 0;
}

/* In-memory transport for engine pairs: one queue per direction. */
struct queue {
	char *data;
	size_t len, cap;
};

struct end {
	struct tls *tls;
	struct queue *in, *out;
};

static ssize_t mem_read(struct tls *t, void *buf, size_t len, void *arg)
{
	struct end *e = arg;
	(void)t;
	if (e->in->len == 0)
		return TLS_WANT_POLLIN;
	if (len > e->in->len)
		len = e->in->len;
	memcpy(buf, e->in->data, len);
	memmove(e->in->data, e->in->data + len, e->in->len - len);
	e->in->len -= len;
	return (ssize_t)len;
}

static ssize_t mem_write(struct tls *t, const void *buf, size_t len, void *arg)
{
	struct end *e = arg;
	struct queue *q = e->out;
	(void)t;
	if (q->len + len > q->cap) {
		size_t cap = q->cap ? q->cap : 4096;
		while (cap < q->len + len)
			cap *= 2;
		if ((q->data = realloc(q->data, cap)) == NULL)
			die("realloc", NULL);
		q->cap = cap;
	}
	memcpy(q->data + q->len, buf, len);
	q->len += len;
	return (ssize_t)len;
}

struct pair {
	struct queue c2s, s2c;
	struct end client, server;
};

/* Pump one pair until both handshakes finish; returns 0 when they did. */
static int pair_handshake(struct pair *p, struct tls *srv, struct tls_config *ccfg)
{
	int cdone = 0, sdone = 0, rounds;
	memset(p, 0, sizeof(*p));
	p->client.in = &p->s2c;
	p->client.out = &p->c2s;
	p->server.in = &p->c2s;
	p->server.out = &p->s2c;
	if ((p->client.tls = tls_client()) == NULL || tls_configure(p->client.tls, ccfg) != 0)
		die("client", "configure");
	if (tls_connect_cbs(p->client.tls, mem_read, mem_write, &p->client, "localhost") != 0)
		die("connect_cbs", tls_error(p->client.tls));
	if (tls_accept_cbs(srv, &p->server.tls, mem_read, mem_write, &p->server) != 0)
		die("accept_cbs", tls_error(srv));
	for (rounds = 0; rounds < 50 && !(cdone && sdone); rounds++) {
		int r;
		if (!cdone) {
			r = tls_handshake(p->client.tls);
			if (r == 0)
				cdone = 1;
			else if (r != TLS_WANT_POLLIN && r != TLS_WANT_POLLOUT) {
				fprintf(stderr, "ctls: client handshake: %s\n", tls_error(p->client.tls));
				return -1;
			}
		}
		if (!sdone) {
			r = tls_handshake(p->server.tls);
			if (r == 0)
				sdone = 1;
			else if (r != TLS_WANT_POLLIN && r != TLS_WANT_POLLOUT) {
				fprintf(stderr, "ctls: server handshake: %s\n", tls_error(p->server.tls));
				return -1;
			}
		}
	}
	return cdone && sdone ? 0 : -1;
}

static void pair_free(struct pair *p)
{
	tls_free(p->client.tls);
	tls_free(p->server.tls);
	free(p->c2s.data);
	free(p->s2c.data);
}

static struct tls_config *engine_client_config(const char *ca, const char *proto)
{
	char trust[4096];
	snprintf(trust, sizeof(trust), "file:%s", ca);
	return client_config(proto, trust, NULL);
}

static int engine_hs(char **a)
{
	struct tls *srv = new_server(a[0], a[1], a[3]);
	struct tls_config *ccfg = engine_client_config(a[2], a[3]);
	int count = atoi(a[4]), warm = atoi(a[5]), i, ok = 0, fail = 0;
	double cpu0 = CPU(), wall0 = WALL();
	for (i = 0; i < count + warm; i++) {
		struct pair p;
		int good;
		if (i == warm) {
			cpu0 = CPU();
			wall0 = WALL();
		}
		good = pair_handshake(&p, srv, ccfg) == 0;
		if (i >= warm)
			good ? ok++ : fail++;
		pair_free(&p);
	}
	printf("ok=%d fail=%d cpu=%.6f wall=%.6f\n", ok, fail, CPU() - cpu0, WALL() - wall0);
	return 0;
}

static int engine_hold(char **a)
{
	struct tls *srv = new_server(a[0], a[1], a[3]);
	struct tls_config *ccfg = engine_client_config(a[2], a[3]);
	int n = atoi(a[4]), warm = atoi(a[5]), i;
	struct pair *pairs = calloc((size_t)(n + warm), sizeof(*pairs));
	long rss0 = 0;
	if (pairs == NULL)
		die("calloc", NULL);
	for (i = 0; i < n + warm; i++) {
		if (i == warm)
			rss0 = rss_kib(0);
		if (pair_handshake(&pairs[i], srv, ccfg) != 0)
			die("engine pair", "handshake failed");
	}
	printf("held=%d pair_kib=%ld\n", n, rss_kib(0) - rss0);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int args;
	} roles[] = {
		{ "server-hs", 6 }, { "client-hs", 6 }, { "bulk-server", 5 },
		{ "bulk-client", 6 }, { "hold-server", 4 }, { "hold-client", 7 },
		{ "engine-hs", 6 }, { "engine-hold", 6 }, { NULL, 0 }
	};
	int i;
	signal(SIGPIPE, SIG_IGN);  /* a benchmark peer, not a library */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (tls_init() != 0)
		die("tls_init", "failed");
	for (i = 0; argc > 1 && roles[i].name != NULL; i++)
		if (strcmp(argv[1], roles[i].name) == 0)
			break;
	if (argc < 2 || roles[i].name == NULL || argc - 2 < roles[i].args) {
		fprintf(stderr, "usage: ctls ROLE ARGS... (see the comment at the top of bench/ctls.c)\n");
		return 2;
	}
	switch (i) {
	case 0: return server_hs(argv + 2);
	case 1: return client_hs(argv + 2, argc - 2);
	case 2: return bulk_server(argv + 2);
	case 3: return bulk_client(argv + 2);
	case 4: return hold_server(argv + 2);
	case 5: return hold_client(argv + 2);
	case 6: return engine_hs(argv + 2);
	default: return engine_hold(argv + 2);
	}
}
