/*
 * libFuzzer: the server side of the engine. The input is what a client
 * sends: it is fed to a fresh server engine in chunks while the handshake
 * is pumped and the server's replies are drained.
 * Seeds: fuzz/corpus/engine_server/ (ClientHellos captured from drain()).
 */
#include "harness.h"

static const char driver[] = FUZZ_LUA_PRELUDE FUZZ_LUA_PUMP
	"local cfg = assert(core.config{cert = read(pki .. '/server.crt'),\n"
	"  key = read(pki .. '/server.key'), alpn = {'h2', 'http/1.1'}})\n"
	"local srv = assert(core.server(cfg))\n"
	"return function(data)\n"
	"  local e = assert(srv:engine())\n"
	"  e:settimeout(0)\n"
	"  pump(e, data)\n"
	"end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	fuzz_setup(driver, "=engine_server_fuzz");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_one(data, size);
}
