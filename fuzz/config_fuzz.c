/*
 * libFuzzer: the config and PEM loading paths. The input is split at NUL
 * bytes into cert, key, ca, crl, ocsp_staple, ciphers, ecdhecurves and
 * protocols text; each non-empty part becomes that option of core.config.
 * A config that loads is then used the way a server (core.server, an
 * engine) and a client (core.client) would. Failures must come back as
 * nil, message; nothing may raise.
 * Seeds: fuzz/corpus/config/ (PEM pairs, a CA, option strings).
 */
#include "harness.h"

static const char driver[] = FUZZ_LUA_PRELUDE
	"local names = {'cert', 'key', 'ca', 'crl', 'ocsp_staple', 'ciphers',\n"
	"  'ecdhecurves', 'protocols'}\n"
	"return function(data)\n"
	"  local opts, i = {}, 1\n"
	"  for part in (data .. '\\0'):gmatch('([^%z]*)%z') do\n"
	"    if names[i] and #part > 0 then opts[names[i]] = part end\n"
	"    i = i + 1\n"
	"  end\n"
	"  local cfg, err = core.config(opts)\n"
	"  if not cfg then check_err(err, 'config') return end\n"
	"  if cfg:has_keypair() then\n"
	"    local srv, serr = core.server(cfg)\n"
	"    if not srv then check_err(serr, 'server') return end\n"
	"    local e = assert(srv:engine())\n"
	"    e:settimeout(0)\n"
	"    local ok, herr = e:handshake()\n"
	"    assert(not ok and herr == 'wantread')\n"
	"    e:close()\n"
	"  end\n"
	"  if opts.cert and opts.key then\n"
	"    local kp, kerr = core.config{keypairs = {{cert = opts.cert, key = opts.key}}}\n"
	"    if not kp then check_err(kerr, 'keypairs') end\n"
	"  end\n"
	"  local c, cerr = core.client(cfg, 'localhost', true)\n"
	"  if not c then check_err(cerr, 'client') return end\n"
	"  c:settimeout(0)\n"
	"  local ok, herr = c:handshake()\n"
	"  if not ok then check_err(herr, 'client handshake') end\n"
	"  c:close()\n"
	"end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	fuzz_setup(driver, "=config_fuzz");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_one(data, size);
}
