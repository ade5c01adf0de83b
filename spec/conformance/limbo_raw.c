/*
 * Raw-libtls baseline for `make limbo`: the same x509-limbo cases as the
 * module runs, as a handshake between two libtls contexts over memory
 * (tls_connect_cbs / tls_accept_cbs), with no lua-tls code in between.
 *
 * Input (stdin), one case a line, tab-separated:
 *   id  kind  dir  servername  depth
 * kind is SERVER (the verifier is the client) or CLIENT (the verifier is a
 * server with verify_client); dir holds ca.pem, chain.pem, key.pem and, when
 * the case has CRLs, crl.pem; servername and depth are "-" when unset.
 * For CLIENT cases the verifying server presents $LIMBO_SERVER_DIR/{cert,key}.pem.
 * Output (stdout), one line a case: id  raw  pass|fail|skip  [error]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tls.h>

struct pipe {
	unsigned char buf[1 << 18];
	size_t len;
};

struct end {
	struct pipe *in, *out;
};

static ssize_t read_cb(struct tls *ctx, void *buf, size_t n, void *arg)
{
	struct end *e = arg;
	if (e->in->len == 0)
		return TLS_WANT_POLLIN;
	if (n > e->in->len)
		n = e->in->len;
	memcpy(buf, e->in->buf, n);
	memmove(e->in->buf, e->in->buf + n, e->in->len - n);
	e->in->len -= n;
	return (ssize_t)n;
}

static ssize_t write_cb(struct tls *ctx, const void *buf, size_t n, void *arg)
{
	struct end *e = arg;
	if (n > sizeof(e->out->buf) - e->out->len)
		n = sizeof(e->out->buf) - e->out->len;
	if (n == 0)
		return TLS_WANT_POLLOUT;
	memcpy(e->out->buf + e->out->len, buf, n);
	e->out->len += n;
	return (ssize_t)n;
}

static char *path(const char *dir, const char *name)
{
	static char p[4][4096];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static int exists(const char *p)
{
	FILE *f = fopen(p, "r");
	if (f)
		fclose(f);
	return f != NULL;
}

/* Prints the result line for one case. */
static void run(const char *id, const char *kind, const char *dir,
    const char *servername, const char *depth)
{
	int client_verifies = strcmp(kind, "SERVER") == 0;
	const char *srv_dir = getenv("LIMBO_SERVER_DIR");
	struct tls_config *vcfg = tls_config_new(), *pcfg = tls_config_new();
	struct tls *client = tls_client(), *listener = tls_server(), *server = NULL;
	static struct pipe c2s, s2c;
	struct end cend = { &s2c, &c2s }, send_ = { &c2s, &s2c };
	struct tls *verifier;
	const char *err = NULL, *skip = NULL;
	int cdone = 0, sdone = 0, i;

	c2s.len = s2c.len = 0;
	if (!vcfg || !pcfg || !client || !listener) {
		printf("%s\traw\tskip\tout of memory\n", id);
		goto out;
	}
	/* The presenting side: the case's certificate, intermediates and key. */
	if (tls_config_set_keypair_file(pcfg, path(dir, "chain.pem"), path(dir, "key.pem")) != 0) {
		printf("%s\traw\tskip\tlibtls cannot load the peer keypair: %s\n", id, tls_config_error(pcfg));
		goto out;
	}
	tls_config_insecure_noverifycert(pcfg);
	tls_config_insecure_noverifyname(pcfg);
	/* The verifying side: the case's roots, CRLs, depth and name. */
	if (tls_config_set_ca_file(vcfg, path(dir, "ca.pem")) != 0)
		skip = tls_config_error(vcfg);
	if (!skip && exists(path(dir, "crl.pem")) &&
	    tls_config_set_crl_file(vcfg, path(dir, "crl.pem")) != 0)
		skip = tls_config_error(vcfg);
	if (!skip && strcmp(depth, "-") != 0 &&
	    tls_config_set_verify_depth(vcfg, atoi(depth)) != 0)
		skip = tls_config_error(vcfg);
	if (!skip && !client_verifies) {
		if (!srv_dir || tls_config_set_keypair_file(vcfg, path(srv_dir, "cert.pem"),
		    path(srv_dir, "key.pem")) != 0)
			skip = "no server keypair for client-certificate cases (LIMBO_SERVER_DIR)";
		else
			tls_config_verify_client(vcfg);
	}
	if (!skip && client_verifies && strcmp(servername, "-") == 0)
		tls_config_insecure_noverifyname(vcfg);
	if (skip) {
		printf("%s\traw\tskip\t%s\n", id, skip);
		goto out;
	}
	if (tls_configure(client, client_verifies ? vcfg : pcfg) != 0 ||
	    tls_configure(listener, client_verifies ? pcfg : vcfg) != 0) {
		printf("%s\traw\tskip\ttls_configure: %s / %s\n", id,
		    tls_error(client) ? tls_error(client) : "", tls_error(listener) ? tls_error(listener) : "");
		goto out;
	}
	if (tls_connect_cbs(client, read_cb, write_cb, &cend,
	    strcmp(servername, "-") == 0 ? "localhost" : servername) != 0 ||
	    tls_accept_cbs(listener, &server, read_cb, write_cb, &send_) != 0) {
		printf("%s\traw\tskip\tcbs: %s\n", id, tls_error(client));
		goto out;
	}
	verifier = client_verifies ? client : server;
	/* Alternate until the verifier finishes or either side fails. */
	for (i = 0; i < 1000 && !err; i++) {
		int r;
		if (!cdone) {
			r = tls_handshake(client);
			if (r == 0)
				cdone = 1;
			else if (r != TLS_WANT_POLLIN && r != TLS_WANT_POLLOUT)
				err = tls_error(verifier) ? tls_error(verifier) : tls_error(client);
		}
		if (!sdone && !err) {
			r = tls_handshake(server);
			if (r == 0)
				sdone = 1;
			else if (r != TLS_WANT_POLLIN && r != TLS_WANT_POLLOUT)
				err = tls_error(verifier) ? tls_error(verifier) : tls_error(server);
		}
		if (cdone && sdone)
			break;
	}
	if (err)
		printf("%s\traw\tfail\t%s\n", id, err);
	else if (cdone && sdone)
		printf("%s\traw\tpass\n", id);
	else
		printf("%s\traw\tfail\thandshake did not finish\n", id);
out:
	tls_free(client);
	tls_free(server);
	tls_free(listener);
	tls_config_free(vcfg);
	tls_config_free(pcfg);
	fflush(stdout);
}

int main(void)
{
	char line[8192];
	if (tls_init() != 0)
		return 1;
	while (fgets(line, sizeof(line), stdin)) {
		char *f[5], *s = line;
		int n = 0;
		line[strcspn(line, "\r\n")] = 0;
		while (n < 5 && (f[n] = strsep(&s, "\t")) != NULL)
			n++;
		if (n != 5) {
			fprintf(stderr, "limbo_raw: bad input line: %s\n", line);
			return 1;
		}
		run(f[0], f[1], f[2], f[3], f[4]);
	}
	return 0;
}
