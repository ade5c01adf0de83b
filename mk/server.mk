# Server side (issue 8): a testssl.sh scan of the module's default server.
# It must report only TLS 1.2 and 1.3, no CBC and no static-RSA suites and no
# vulnerability findings (tools/testssl-check.lua). Takes about a minute.
.PHONY: testssl
testssl: build
	@sh tools/ensure-packages.sh testssl.sh lua-dkjson lua-cqueues openssl
	@LUA=$(LUA) sh tools/testssl-scan.sh

ci-checks:: testssl
