/*
 * libFuzzer: the client side of the engine. A client engine sends its
 * ClientHello (drained and dropped); the input is what the server answers.
 * Inputs of odd length run against a verifying client (the test CA), even
 * ones against insecure_noverifycert, so both the verification failure path
 * and the key exchange behind it get bytes.
 * Seeds: fuzz/corpus/engine_client/ (server flights captured from drain()).
 */
#include "harness.h"

static const char driver[] = FUZZ_LUA_PRELUDE FUZZ_LUA_PUMP
	"local verifying = assert(core.config{ca = read(pki .. '/server.crt'),\n"
	"  alpn = {'h2', 'http/1.1'}})\n"
	"local insecure = assert(core.config{insecure_noverifycert = true,\n"
	"  insecure_noverifyname = true})\n"
	"return function(data)\n"
	"  local odd = #data % 2 == 1\n"
	"  local e = assert(core.client(odd and verifying or insecure, 'localhost', odd))\n"
	"  e:settimeout(0)\n"
	"  local ok, err = e:handshake()\n"
	"  assert(not ok and err == 'wantread', 'client did not wait for the server')\n"
	"  assert(#e:drain() > 0, 'no ClientHello')\n"
	"  pump(e, data)\n"
	"end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	fuzz_setup(driver, "=engine_client_fuzz");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_one(data, size);
}
