# make testssl: a testssl.sh scan of the module's default server.
# It must report only TLS 1.2 and 1.3, no CBC and no static-RSA suites and no
# vulnerability findings (hardening/testssl-check.lua). Takes about a minute.
# .ci/run installs these up front (make deps ALL=1)
EXTRA_APT_PKGS += testssl.sh lua-dkjson
.PHONY: testssl
testssl: build
	@sh tools/ensure-packages.sh testssl.sh lua-dkjson lua-cqueues openssl
	@LUA=$(LUA) sh hardening/testssl-scan.sh

ci-checks:: testssl
