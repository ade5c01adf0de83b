# x509-limbo conformance (doc/conformance.md).
#   make limbo          runs every case through raw libtls and tls.engine
#                       (default and strict policy), writes doc/conformance.md,
#                       prints the three totals, and fails when a case's result
#                       differs from spec/conformance/limbo-expected.tsv
#   make limbo-update   the same, recording the results as the new expectations

LIMBO_PKGS := faketime lua-dkjson
EXTRA_APT_PKGS += $(LIMBO_PKGS)
LIMBO_DIR  := build/limbo
LIMBO_RAW  := $(LIMBO_DIR)/limbo_raw

.PHONY: limbo limbo-update limbo-deps

limbo-deps:
	@sh tools/ensure-packages.sh $(LIMBO_PKGS)

$(LIMBO_RAW): spec/conformance/limbo_raw.c | deps-build
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(shell $(PKG_CONFIG) --cflags libtls 2>/dev/null) \
	  -o $@ $< $(DEPS_LIBS)

limbo: limbo-deps build $(LIMBO_RAW)
	LUA=$(LUA) $(LUA) spec/conformance/limbo.lua $(LIMBO_RAW) $(CURDIR)/$(LIMBO_DIR)

limbo-update: limbo-deps build $(LIMBO_RAW)
	LUA=$(LUA) $(LUA) spec/conformance/limbo.lua $(LIMBO_RAW) $(CURDIR)/$(LIMBO_DIR) --update

ci-checks:: limbo
