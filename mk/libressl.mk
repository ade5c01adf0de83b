# The suite on LibreSSL's own libtls (issue 18), beside `make test` on the
# system's LibreTLS.
#   make test-libressl   builds LibreSSL from its source archive into
#                        build/libressl/ (about 30 s on 2 cores, once), the
#                        module against it into build/libressl-module/, and
#                        runs the whole suite with that module (CI: in
#                        ci-checks; 2-4 minutes on 2 cores in all)
#
# The archive is read from ../shared/ (LIBRESSL_TARBALL=... to point
# elsewhere); the project carries none of LibreSSL's code. LibreSSL installs
# into build/libressl/ only: its install writes openssl.cnf, x509v3.cnf and
# cert.pem into OPENSSLDIR, and with the default /etc/ssl it would replace the
# system's openssl.cnf. The target checks that every installed file is under
# the prefix and that /etc/ssl/openssl.cnf is unchanged.

LIBRESSL_VERSION := 4.3.2
LIBRESSL_TARBALL ?= $(abspath $(CURDIR)/../shared/libressl/libressl-$(LIBRESSL_VERSION)-src.tar.gz)
LIBRESSL_PREFIX  := $(CURDIR)/build/libressl
LIBRESSL_MODULE  := build/libressl-module
# built once per version (rm -rf build/libressl to force a rebuild)
LIBRESSL_STAMP   := $(LIBRESSL_PREFIX)/installed-$(LIBRESSL_VERSION)
SYSTEM_CNF       := /etc/ssl/openssl.cnf
# the whole suite; LIBRESSL_SPECS=spec/x_spec.lua runs one spec file there
LIBRESSL_SPECS   ?= spec
# .ci/run installs these up front (make deps ALL=1)
EXTRA_APT_PKGS += cmake

.PHONY: test-libressl libressl libressl-module

# make test on the system's libtls: spec/library_spec.lua checks that the
# module runs on the library pkg-config describes (LibreTLS-libtls, ...)
ifeq ($(LIBTLS_DIR),)
ifndef TLS_EXPECT_LIBRARY
export TLS_EXPECT_LIBRARY := $(shell $(PKG_CONFIG) --list-all 2>/dev/null | sed -n 's/^libtls  *\([A-Za-z]*\)-libtls .*/\1/p')
endif
endif

libressl: $(LIBRESSL_STAMP)

$(LIBRESSL_STAMP):
	@test -f "$(LIBRESSL_TARBALL)" || { \
	  echo "test-libressl: LibreSSL's source archive is missing: $(LIBRESSL_TARBALL)" >&2; \
	  echo "  put libressl-$(LIBRESSL_VERSION)-src.tar.gz there or run make test-libressl LIBRESSL_TARBALL=/path/to/it" >&2; \
	  exit 1; }
	@sh tools/ensure-packages.sh cmake gcc make
	@cnf=$$(sha256sum $(SYSTEM_CNF) 2>/dev/null); \
	rm -rf $(LIBRESSL_PREFIX) && mkdir -p $(LIBRESSL_PREFIX)/src && \
	tar xzf "$(LIBRESSL_TARBALL)" -C $(LIBRESSL_PREFIX)/src --strip-components=2 && \
	echo "== LibreSSL $(LIBRESSL_VERSION): building into $(LIBRESSL_PREFIX) (log: $(LIBRESSL_PREFIX)/build.log)" && \
	{ cmake -S $(LIBRESSL_PREFIX)/src -B $(LIBRESSL_PREFIX)/cmake -DCMAKE_BUILD_TYPE=Release \
	    -DBUILD_SHARED_LIBS=ON -DLIBRESSL_APPS=OFF -DLIBRESSL_TESTS=OFF \
	    -DCMAKE_INSTALL_PREFIX=$(LIBRESSL_PREFIX) -DOPENSSLDIR=$(LIBRESSL_PREFIX)/etc/ssl && \
	  cmake --build $(LIBRESSL_PREFIX)/cmake --parallel 2 && \
	  cmake --install $(LIBRESSL_PREFIX)/cmake; } > $(LIBRESSL_PREFIX)/build.log 2>&1 || \
	  { tail -n 40 $(LIBRESSL_PREFIX)/build.log; exit 1; }; \
	outside=$$(grep -v '^$(LIBRESSL_PREFIX)/' $(LIBRESSL_PREFIX)/cmake/install_manifest.txt); \
	if [ -n "$$outside" ]; then echo "test-libressl: LibreSSL installed outside $(LIBRESSL_PREFIX):" >&2; \
	  echo "$$outside" >&2; exit 1; fi; \
	if [ "$$cnf" != "$$(sha256sum $(SYSTEM_CNF) 2>/dev/null)" ]; then \
	  echo "test-libressl: $(SYSTEM_CNF) changed while LibreSSL was built" >&2; exit 1; fi
	@touch $@

libressl-module: libressl
	@$(MAKE) --no-print-directory build BUILD=$(LIBRESSL_MODULE) LIBTLS_DIR=$(LIBRESSL_PREFIX)

# --cpath overrides .busted's build/; spec/library_spec.lua checks that the
# suite runs on TLS_EXPECT_LIBRARY, and LIBTLS_DIR tells spec/install_spec.lua
# to build its luarocks install against the same library. The suite must also
# leave the system's openssl.cnf alone.
test-libressl: deps libressl-module
	@cnf=$$(sha256sum $(SYSTEM_CNF) 2>/dev/null); \
	LUA_CPATH="$(CURDIR)/$(LIBRESSL_MODULE)/?.so;;" LIBTLS_DIR=$(LIBRESSL_PREFIX) \
	  $(LUA) -e 'local l = require("tls.core").library; print("test-libressl: module on " .. l.name .. " " .. tostring(l.version) .. ", libcrypto: " .. l.crypto); assert(l.name == "LibreSSL" and l.crypto:find("^LibreSSL"), "the module does not run on LibreSSL")' && \
	LUA_CPATH="$(CURDIR)/$(LIBRESSL_MODULE)/?.so;;" LIBTLS_DIR=$(LIBRESSL_PREFIX) TLS_EXPECT_LIBRARY=LibreSSL \
	  busted --lua=$(LUA) --cpath="$(LIBRESSL_MODULE)/?.so" $(BUSTED_FLAGS) $(LIBRESSL_SPECS); rc=$$?; \
	if [ "$$cnf" != "$$(sha256sum $(SYSTEM_CNF) 2>/dev/null)" ]; then \
	  echo "test-libressl: $(SYSTEM_CNF) changed during the run" >&2; exit 1; fi; \
	exit $$rc

ci-checks:: test-libressl

# The bench on LibreSSL: the module and raw libtls (bench/ctls.c) both on
# LibreSSL's libtls; LuaSec and the peers stay on the system's OpenSSL.
# BENCH_ONLY picks sections (default: handshakes, bulk, memory, callgrind,
# a few minutes); results in build/libressl-module/bench/results.md.
LIBRESSL_BENCH_CTLS := $(LIBRESSL_MODULE)/bench/ctls
LIBRESSL_BENCH_ONLY ?= server_hs,client_hs,resumed,bulk,memory,callgrind

$(LIBRESSL_BENCH_CTLS): bench/ctls.c $(LIBRESSL_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -D_GNU_SOURCE -O2 -g $(WARN) -I$(LIBRESSL_PREFIX)/include -o $@ bench/ctls.c \
	  -L$(LIBRESSL_PREFIX)/lib -Wl,--disable-new-dtags,-rpath,$(LIBRESSL_PREFIX)/lib -ltls

.PHONY: bench-libressl
bench-libressl: bench-deps libressl-module $(LIBRESSL_BENCH_CTLS)
	BENCH_ROOT=$(CURDIR) BENCH_CTLS=$(CURDIR)/$(LIBRESSL_BENCH_CTLS) BENCH_OUT=$(CURDIR)/$(LIBRESSL_MODULE)/bench \
	  BENCH_ONLY=$${BENCH_ONLY:-$(LIBRESSL_BENCH_ONLY)} LUA_CPATH="$(CURDIR)/$(LIBRESSL_MODULE)/?.so;;" \
	  $(LUA) bench/run.lua

# valgrind on LibreSSL: the module's engine, hostile-peer and misuse specs
# (LIBRESSL_VALGRIND_SPECS) with the suppressions of make memcheck, which
# name LibreSSL's two process-wide allocations. About 2 minutes; not in CI.
LIBRESSL_VALGRIND_SPECS ?= spec/engine_spec.lua spec/hostile_engine_spec.lua spec/misuse_spec.lua

.PHONY: memcheck-libressl
memcheck-libressl: deps deps-hardening libressl-module
	LUA_CPATH="$(CURDIR)/$(LIBRESSL_MODULE)/?.so;;" LIBTLS_DIR=$(LIBRESSL_PREFIX) STRESS_NO_RSS=1 \
	  valgrind $(VALGRIND_FLAGS) $(LUA) /usr/bin/busted --ignore-lua --cpath="$(LIBRESSL_MODULE)/?.so" \
	  $(BUSTED_FLAGS) $(LIBRESSL_VALGRIND_SPECS)
