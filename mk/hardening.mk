# Hardening checks: sanitizers, valgrind, libFuzzer, fault injection, soak.
# doc/security.md says what each target proves and how long it takes.
#
#   make asan       module built with ASan+UBSan (clang), whole suite under it
#   make memcheck   suite under valgrind; fails on definitely/indirectly lost
#                   blocks and on memory errors
#   make fuzz       each libFuzzer harness for FUZZ_SECONDS (+ fuzz/x509_fuzz.lua)
#   make failalloc  every Lua allocation of a scripted session failed in turn,
#                   under ASan with LeakSanitizer
#   make soak       10,000 engine and 10,000 loopback connections, descriptors
#                   and memory flat
#
# CI (ci-checks) runs bounded versions of each: see the ci-checks recipe below.

HARDEN_PKGS := clang libclang-rt-14-dev valgrind lua5.4 liblua5.4-dev libtls-dev \
               pkg-config openssl lua-busted lua-socket
# .ci/run installs these up front (make deps ALL=1)
EXTRA_APT_PKGS += clang libclang-rt-14-dev valgrind

CLANG        ?= clang
ASAN_DIR     := build/asan
ASAN_MODULE  := $(ASAN_DIR)/tls/core.so
ASAN_OBJS    := $(SRCS:src/%.c=$(ASAN_DIR)/obj/%.o)
SAN_FLAGS    := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
ASAN_CFLAGS   = -std=c99 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(WARN) \
                $(DEPS_CFLAGS) -g -O1 $(SAN_FLAGS)
# The interpreter is not instrumented: preload the runtime into it.
ASAN_RT       = $(shell $(CLANG) -print-file-name=libclang_rt.asan-x86_64.so)
# Only Lua processes get the runtime: the other tools the specs start
# (curl hangs with it preloaded) run through shims in $(ASAN_SHIMS) that
# drop LD_PRELOAD. detect_leaks=0 for the suite: leaks are checked by
# memcheck and by failalloc (LeakSanitizer). A 16 MiB quarantine keeps
# use-after-free detection for recent frees while the specs' RSS bounds hold.
ASAN_SHIMS    := $(ASAN_DIR)/shims
ASAN_SHIMMED  := curl openssl nginx gnutls-cli gnutls-serv luarocks
ASAN_ENV      = LD_PRELOAD=$(ASAN_RT) PATH="$(CURDIR)/$(ASAN_SHIMS):$$PATH" \
                ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:verify_asan_link_order=0:strict_string_checks=1:detect_stack_use_after_return=1:quarantine_size_mb=16 \
                UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
                STRESS_NO_RSS=1 LUA_CPATH="$(CURDIR)/$(ASAN_DIR)/?.so;;"
ASAN_SPECS   ?= spec

VALGRIND_SPECS ?= spec
VALGRIND_FLAGS := --quiet --leak-check=full --show-leak-kinds=definite,indirect \
                  --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
                  --suppressions=$(CURDIR)/hardening/valgrind.supp --num-callers=30 --keep-debuginfo=yes \
                  --track-fds=no

FUZZ_SECONDS ?= 60
FUZZ_DIR     := build/fuzz
FUZZERS      := engine_server engine_client config
FUZZ_BINS    := $(FUZZERS:%=$(FUZZ_DIR)/%_fuzz)
# The harnesses compile the module's sources in (instrumented for coverage)
# and link the static Lua library.
FUZZ_CFLAGS   = -std=c99 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Isrc \
                $(DEPS_CFLAGS) -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined
FUZZ_LIBS     = -Wl,-Bstatic -llua5.4 -Wl,-Bdynamic $(DEPS_LIBS) -lm -ldl

FAILALLOC     := build/failalloc/failalloc
FAILALLOC_STEP ?= 1

.PHONY: asan asan-build asan-shims memcheck fuzz fuzz-build fuzz-pki failalloc soak \
        deps-hardening hardening-ci

deps-hardening:
	@sh tools/ensure-packages.sh $(HARDEN_PKGS)

#--- AddressSanitizer + UndefinedBehaviorSanitizer

asan-build: $(ASAN_MODULE)

$(ASAN_MODULE): $(ASAN_OBJS)
	@mkdir -p $(dir $@)
	$(CLANG) -shared -shared-libasan $(SAN_FLAGS) -o $@ $(ASAN_OBJS) $(DEPS_LIBS)

$(ASAN_DIR)/obj/%.o: src/%.c src/ltls.h | deps-hardening
	@mkdir -p $(dir $@)
	$(CLANG) $(ASAN_CFLAGS) -c -o $@ $<

asan-shims:
	@mkdir -p $(ASAN_SHIMS)
	@for t in $(ASAN_SHIMMED); do \
	  real=$$(command -v $$t) || continue; \
	  printf '#!/bin/sh\nunset LD_PRELOAD\nexec %s "$$@"\n' "$$real" > $(ASAN_SHIMS)/$$t; \
	  chmod +x $(ASAN_SHIMS)/$$t; \
	done

asan: deps deps-hardening build asan-build asan-shims
	$(ASAN_ENV) lua5.4 -e 'assert(package.searchpath("tls.core", package.cpath):find("asan"))'
	$(ASAN_ENV) busted --lua=$(LUA) $(BUSTED_FLAGS) $(ASAN_SPECS)

#--- valgrind

# The soak in spec/stress_spec.lua runs MEMCHECK_STRESS_N connections here.
MEMCHECK_STRESS_N ?= 200
memcheck: deps deps-hardening build
	STRESS_NO_RSS=1 STRESS_N=$(MEMCHECK_STRESS_N) \
	  valgrind $(VALGRIND_FLAGS) $(LUA) /usr/bin/busted --ignore-lua $(BUSTED_FLAGS) $(VALGRIND_SPECS)

#--- libFuzzer

fuzz-build: $(FUZZ_BINS) fuzz-pki

$(FUZZ_DIR)/%_fuzz: fuzz/%_fuzz.c fuzz/harness.h $(SRCS) src/ltls.h | deps-hardening
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(SRCS) $(FUZZ_LIBS)

# A throwaway key and certificate for the server-side harness (never committed).
fuzz-pki: $(FUZZ_DIR)/pki/server.crt
$(FUZZ_DIR)/pki/server.crt:
	@mkdir -p $(dir $@)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
	  -subj /CN=localhost -addext subjectAltName=DNS:localhost \
	  -keyout $(FUZZ_DIR)/pki/server.key -out $@ 2>/dev/null

# Each harness runs on a copy of its seed corpus (new inputs land in
# build/fuzz/corpus/, the repo's seeds stay as they are) plus the past
# crashes in fuzz/regressions/<harness>/ (read only: libFuzzer writes new
# inputs to the first directory); crashes go to build/fuzz/crashes/ and fail
# the target. Copy a crash into fuzz/regressions/<harness>/ once fixed:
# spec/fuzz_regressions_spec.lua replays it in make test.
fuzz: deps-hardening fuzz-build build
	@mkdir -p $(FUZZ_DIR)/crashes
	@set -e; for f in $(FUZZERS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$f; \
	  cp -n fuzz/corpus/$$f/* $(FUZZ_DIR)/corpus/$$f/ 2>/dev/null || true; \
	  echo "== fuzz $$f for $(FUZZ_SECONDS)s"; \
	  FUZZ_PKI=$(CURDIR)/$(FUZZ_DIR)/pki \
	  $(FUZZ_DIR)/$${f}_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=20000 \
	    -timeout=20 -rss_limit_mb=1024 -print_final_stats=1 \
	    -artifact_prefix=$(CURDIR)/$(FUZZ_DIR)/crashes/$$f- \
	    $(FUZZ_DIR)/corpus/$$f fuzz/regressions/$$f 2>$(FUZZ_DIR)/$$f.log || \
	    { tail -n 60 $(FUZZ_DIR)/$$f.log; exit 1; }; \
	  grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units)' $(FUZZ_DIR)/$$f.log || true; \
	done
	@if [ -f fuzz/x509_fuzz.lua ]; then \
	  echo "== fuzz/x509_fuzz.lua for $(FUZZ_SECONDS)s"; \
	  FUZZ_SECONDS=$(FUZZ_SECONDS) $(LUA) fuzz/x509_fuzz.lua 0 "" fuzz/corpus/x509 fuzz/regressions/x509; \
	fi

#--- fault injection through Lua's allocator

$(FAILALLOC): hardening/failalloc.c $(SRCS) src/ltls.h | deps-hardening
	@mkdir -p $(dir $@)
	$(CLANG) -std=c99 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Isrc $(DEPS_CFLAGS) \
	  $(SAN_FLAGS) -o $@ hardening/failalloc.c $(SRCS) $(FUZZ_LIBS)

# FAILALLOC_STEP=k tries every k-th allocation (1: every one).
failalloc: deps-hardening $(FAILALLOC) fuzz-pki build
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	FAILALLOC_PKI=$(CURDIR)/$(FUZZ_DIR)/pki \
	  $(FAILALLOC) -step $(FAILALLOC_STEP) hardening/failalloc_script.lua

#--- soak: 10,000 engine connections, then 10,000 loopback ones through a listener

SOAK_N ?= 10000
soak: deps build
	STRESS_N=$(SOAK_N) STRESS_LOOPBACK_N=$(SOAK_N) busted --lua=$(LUA) $(BUSTED_FLAGS) spec/stress_spec.lua

#--- CI: bounded versions, a few minutes in all on 2 cores.
#  asan:      core, engine and the hardening specs (the whole suite: make asan)
#  memcheck:  engine and the hardening specs (the whole suite: make memcheck)
#  fuzz:      15 s per harness
#  failalloc: every 3rd allocation
# The server specs for reload and OCSP/CRL run the server-side C paths
# (context swap, staples, CRLs) that the other subsets do not reach.
CI_SERVER_SPECS   := $(wildcard spec/server_reload_spec.lua spec/server_ocsp_crl_spec.lua)
CI_ASAN_SPECS     ?= $(wildcard spec/core_*_spec.lua spec/engine*_spec.lua) \
                     $(wildcard spec/hostile_*_spec.lua spec/misuse_spec.lua spec/stress_spec.lua) \
                     $(CI_SERVER_SPECS)
CI_VALGRIND_SPECS ?= $(wildcard spec/engine*_spec.lua) \
                     $(wildcard spec/hostile_*_spec.lua spec/misuse_spec.lua spec/stress_spec.lua) \
                     $(CI_SERVER_SPECS)

# All four run even when one fails, so one CI run reports every failure;
# the target fails at the end, naming the ones that failed.
hardening-ci:
	@failed=""; \
	$(MAKE) --no-print-directory asan ASAN_SPECS="$(CI_ASAN_SPECS)" || failed="$$failed asan"; \
	$(MAKE) --no-print-directory memcheck VALGRIND_SPECS="$(CI_VALGRIND_SPECS)" || failed="$$failed memcheck"; \
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=15 || failed="$$failed fuzz"; \
	$(MAKE) --no-print-directory failalloc FAILALLOC_STEP=3 || failed="$$failed failalloc"; \
	if [ -n "$$failed" ]; then echo "hardening-ci: failed:$$failed" >&2; exit 1; fi

ci-checks:: hardening-ci
