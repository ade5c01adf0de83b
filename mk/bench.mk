# Benchmarks (bench/): lua-tls against raw libtls (bench/ctls.c) and LuaSec.
#   make bench        the full run, a few minutes on 2 cores (settings: bench/lib.lua)
#   make bench-smoke  every section with tiny counts, to prove the bench code runs
# ca-certificates: the trust store the client sections mirror (/etc/ssl/certs)
BENCH_APT_PKGS := lua-sec lua-socket valgrind openssl ca-certificates nginx libtls-dev gcc pkg-config
EXTRA_APT_PKGS += lua-sec valgrind
BENCH_CTLS := build/bench/ctls

.PHONY: bench bench-smoke bench-deps

$(BENCH_CTLS): bench/ctls.c | deps-build
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -D_GNU_SOURCE -O2 -g $(WARN) $(shell $(PKG_CONFIG) --cflags libtls 2>/dev/null) \
		-o $@ bench/ctls.c $(DEPS_LIBS)

bench-deps:
	@sh tools/ensure-packages.sh $(BENCH_APT_PKGS)

bench: bench-deps build $(BENCH_CTLS)
	BENCH_ROOT=$(CURDIR) $(LUA) bench/run.lua

bench-smoke: bench-deps build $(BENCH_CTLS)
	BENCH_ROOT=$(CURDIR) BENCH_SMOKE=1 timeout 120 $(LUA) bench/run.lua

ci-checks:: bench-smoke
