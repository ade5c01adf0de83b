/*
 * lua-tls: shared declarations of the C core (tls.core).
 *
 * One connection type serves sockets and memory: the TLS state machine is
 * libtls's, driven through its callback transport, so the handshake and record
 * code path is the same whether bytes go to a descriptor or to a buffer.
 */
#ifndef LTLS_H
#define LTLS_H

#include <stddef.h>
#include <tls.h>
#include <lua.h>
#include <lauxlib.h>
#include "compat.h"  /* the 5.4 API on 5.1, LuaJIT, 5.2 and 5.3 */

#include "portable.h"

#define LTLS_CONFIG   "tls.config"
#define LTLS_SERVER   "tls.server"
#define LTLS_CONN     "tls.conn"
#define LTLS_LISTENER "tls.listen_socket"  /* core.listen; tls.listen wraps it */

/* Plaintext bytes kept between receive() calls (lines, partial reads). */
#define LTLS_RBUF_SIZE 16384
/* Default bound on ciphertext an engine holds in each direction. */
#define LTLS_MEM_LIMIT_DEFAULT (256 * 1024)
/* What an engine's output may pass its limit by: handshake flights and the
 * close_notify are written whole (see ltls_write_cb). */
#define LTLS_MEM_SLACK (64 * 1024)
/* send() hands libtls one record's worth at a time; a record's ciphertext
 * is its plaintext plus at most this much (header, nonce, tag). */
#define LTLS_RECORD_SIZE 16384
#define LTLS_RECORD_OVERHEAD 256

/* session_file's descriptor. libtls writes the session through it at the
 * end of a client handshake, so the config and every client conn made from
 * it each hold a reference: the number is closed (and free for reuse) only
 * when the last of them is released. */
typedef struct ltls_session_fd {
	int fd;
	int refs;
} ltls_session_fd;

typedef struct ltls_config {
	struct tls_config *cfg;
	ltls_session_fd *session; /* session_file; NULL when none */
	int has_keypair;
	int insecure;            /* LTLS_INSECURE_* bits the options named */
	struct ltls_trust *trust; /* what ca/ca_file/ca_path named (x509.c) */
} ltls_config;

#define LTLS_INSECURE_NOVERIFYCERT 1
#define LTLS_INSECURE_NOVERIFYNAME 2
#define LTLS_INSECURE_NOVERIFYTIME 4

typedef struct ltls_server {
	struct tls *ctx;         /* a configured tls_server() */
} ltls_server;

/* A growable byte queue with a hard limit; memory transport only. */
typedef struct ltls_membuf {
	char *data;
	size_t head, tail, cap;
} ltls_membuf;

enum { LTLS_CLIENT = 0, LTLS_SERVER_CONN = 1 };

/* A conn's life cycle. A failure (failure[] set) is final in any state:
 * send and receive repeat it without calling libtls. */
enum ltls_state {
	LTLS_HANDSHAKING,        /* until tls_handshake succeeds */
	LTLS_ESTABLISHED,        /* data may flow (once a check has passed) */
	LTLS_CLOSED              /* the context is freed; only close/gc remain */
};

/* ltls_conn.flags: what is true of a conn besides its state. */
#define LTLS_F_SERVER       0x01  /* the server side (else the client) */
#define LTLS_F_SOCKET       0x02  /* has, or had before closing, a descriptor */
#define LTLS_F_VERIFY       0x04  /* a client that verifies: classify its failures */
#define LTLS_F_CHECK        0x08  /* a setcheck() check must pass before data flows */
#define LTLS_F_PEER_EOF     0x10  /* the transport saw the end of the stream */
#define LTLS_F_INPUT_ENDED  0x20  /* engine: feed_eof() marked the end of input */
#define LTLS_F_LONG_RECORDS 0x40  /* the last record read outgrew the count asked for */

typedef struct ltls_conn {
	struct tls *ctx;         /* NULL once LTLS_CLOSED */
	int fd;                  /* -1: memory transport (engine) */
	enum ltls_state state;
	unsigned flags;          /* LTLS_F_* */
	char failure[256];       /* the first fatal error, repeated after it */
	int want;                /* 0, TLS_WANT_POLLIN or TLS_WANT_POLLOUT */
	int io_errno;            /* errno of the last transport failure */
	char head[8];            /* the peer's first bytes: plain HTTP shows in them */
	unsigned char head_len;
	double timeout;          /* seconds; < 0 blocks */
	/* plaintext receive buffer */
	size_t rfirst, rlast;
	/* memory transport */
	ltls_membuf in, out;
	size_t mem_limit;
	/* LTLS_RBUF_SIZE bytes, allocated when a read needs it and freed once
	 * receive() has handed everything out: idle connections hold none */
	char *rbuf;
	size_t max_line;         /* bound on a "*l"/"*L" line, prefix included */
	ltls_session_fd *session; /* the config's session_file, referenced */
} ltls_conn;

/* Default bound on a line read with "*l"/"*L" (conn:setmaxline changes it). */
#define LTLS_MAX_LINE_DEFAULT (64 * 1024)

/* config.c */
void ltls_session_fd_release(ltls_session_fd **s);
int ltls_config_new(lua_State *L);
ltls_config *ltls_checkconfig(lua_State *L, int idx);
void ltls_config_open(lua_State *L);

/* server.c */
int ltls_server_new(lua_State *L);
ltls_server *ltls_checkserver(lua_State *L, int idx);
void ltls_server_open(lua_State *L);

/* conn.c */
ltls_conn *ltls_conn_alloc(lua_State *L, int owner_idx, int mode);
int ltls_conn_client(lua_State *L);
ltls_conn *ltls_checkconn(lua_State *L, int idx);
void ltls_conn_open(lua_State *L);
int ltls_conn_start_server(lua_State *L, ltls_conn *c, ltls_server *s);
int ltls_conn_interpose(lua_State *L);

/* transport.c: the libtls callbacks and the wait between wants */
ssize_t ltls_read_cb(struct tls *ctx, void *buf, size_t len, void *arg);
ssize_t ltls_write_cb(struct tls *ctx, const void *buf, size_t len, void *arg);
int ltls_wait(ltls_conn *c, int want, double deadline);
int ltls_poll(int fd, short events, double deadline);
double ltls_now(void);
double ltls_deadline(double timeout);
double ltls_opttimeout(lua_State *L, int arg);
const char *ltls_timeout_problem(lua_State *L, int idx);
void ltls_membuf_free(ltls_membuf *b);
#define LTLS_MEMBUF_FULL  (-1)
#define LTLS_MEMBUF_NOMEM (-2)
int ltls_membuf_push(ltls_membuf *b, const char *p, size_t n, size_t limit);
size_t ltls_membuf_len(const ltls_membuf *b);
const char *ltls_membuf_take(ltls_membuf *b, size_t n);

/* info.c */
int ltls_push_info(lua_State *L, ltls_conn *c);
int ltls_push_peer(lua_State *L, ltls_conn *c);

/* base64.c: the one base64 decoder (core.base64_decode, OCSP staples) */
long ltls_base64_check(const char *s, size_t len, const char **why, size_t *bad_at);
size_t ltls_base64_decode(const char *s, size_t len, unsigned char *out);
void ltls_base64_open(lua_State *L);

/* x509.c: libcrypto checks for tls.policy (core.x509_issued, ...) */
void ltls_x509_open(lua_State *L);
int ltls_trust_set(ltls_config *c, const char *file, const char *mem, size_t mem_len,
    const char *dir);
void ltls_trust_free(ltls_config *c);

/* net.c: descriptors */
int ltls_tcp_connect(const char *host, const char *port, double timeout, char *err, size_t errlen);
void ltls_listener_open(lua_State *L);
int ltls_listen(lua_State *L);


/* file.c: private files for the Lua helpers (tls.tofu) */
int ltls_replace_file(lua_State *L);
int ltls_mkdir(lua_State *L);
int ltls_file_stamp(lua_State *L);

#endif
