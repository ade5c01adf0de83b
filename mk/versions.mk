# Every Lua version: the module and the whole suite on Lua 5.1, LuaJIT 2.1
# (OpenResty's luajit2), 5.2, 5.3 and 5.4. Each version builds into its own
# directory (build/<version>/; 5.4 in build/), so builds do not clobber each
# other. `make test` stays the 5.4 suite.
#   make LUA_VERSION=5.1 build|test   one version
#   make build-all                    the module for all five
#   make test-all                     the whole suite on all five, one after another
#   make test-versions                the same without 5.4 (CI: `make test` ran it)
LUA_VERSIONS       := 5.1 jit 5.2 5.3 5.4
LUA_OTHER_VERSIONS := $(filter-out 5.4,$(LUA_VERSIONS))
EXTRA_APT_PKGS += lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev \
                  luajit2 libluajit2-5.1-dev

.PHONY: build-all test-all test-versions

build-all:
	@for v in $(LUA_VERSIONS); do $(MAKE) --no-print-directory LUA_VERSION=$$v build || exit 1; done

# One run per version, all of them even when one fails; the summary names
# the versions that failed.
test-all:
	@failed=""; for v in $(LUA_VERSIONS); do \
	  echo "=== make test LUA_VERSION=$$v"; \
	  $(MAKE) --no-print-directory LUA_VERSION=$$v test || failed="$$failed $$v"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-all: the suite failed on:$$failed"; exit 1; fi; \
	echo "test-all: the suite passed on $(LUA_VERSIONS)"

# CI: the versions other than 5.4 (`make test` has run that one), two at a
# time (the suite mostly waits on its peers), each into build/test-<version>.log;
# prints each summary line, and the log of a version that failed.
TEST_VERSION_TARGETS := $(LUA_OTHER_VERSIONS:%=test-version-%)
.PHONY: $(TEST_VERSION_TARGETS)
test-versions:
	@$(MAKE) --no-print-directory -j2 -k $(TEST_VERSION_TARGETS)

$(TEST_VERSION_TARGETS): test-version-%:
	@mkdir -p build
	@start=$$(date +%s); \
	if $(MAKE) --no-print-directory LUA_VERSION=$* test BUSTED_FLAGS="-o utfTerminal" \
	    > build/test-$*.log 2>&1; then rc=0; else rc=1; fi; \
	summary=$$(grep -aE '[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors?' build/test-$*.log | tail -n1); \
	echo "test-versions: Lua $*: $${summary:-no summary} ($$(( $$(date +%s) - start )) s)"; \
	if [ $$rc != 0 ]; then cat build/test-$*.log; exit 1; fi

ci-checks:: test-versions

# bench/sections/45_versions.lua runs the bench peer on every build
bench bench-smoke: build-all
