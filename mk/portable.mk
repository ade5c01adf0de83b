# PORTABLE=1 builds the C core with the portable system-call paths that
# BSD/macOS-style systems take (src/portable.h: socket/accept + fcntl
# instead of SOCK_CLOEXEC/SOCK_NONBLOCK/accept4, a local memmem, mkstemp +
# fcntl), so Linux proves them: `make PORTABLE=1 test` runs the whole suite
# on them. (MSG_NOSIGNAL stays: Linux has no SO_NOSIGPIPE to fall back to.)

PORTABLE ?= 0
ifeq ($(PORTABLE),1)
ALL_CFLAGS += -DLTLS_PORTABLE
# spec/portable_spec.lua checks the module loaded is this build
export LTLS_EXPECT_PORTABLE := 1
endif

# Objects are rebuilt when PORTABLE changes (one stamp per setting).
$(OBJS): $(BUILD)/obj/portable-$(PORTABLE).stamp src/portable.h
$(BUILD)/obj/portable-$(PORTABLE).stamp:
	@mkdir -p $(dir $@)
	@rm -f $(BUILD)/obj/portable-*.stamp
	@touch $@

# CI: the specs that exercise sockets, descriptors, PEM detection and files,
# on a portable build of its own in build/portable (about 30 s here).
# spec/portable_spec.lua checks that the module really is the portable one.
PORTABLE_SPECS := spec/portable_spec.lua spec/core_client_spec.lua spec/core_server_spec.lua \
	spec/core_io_spec.lua spec/core_config_spec.lua spec/core_safety_spec.lua \
	spec/server_peers_spec.lua spec/hostile_client_spec.lua spec/tofu_spec.lua

.PHONY: test-portable
test-portable: deps
	$(MAKE) PORTABLE=1 BUILD=build/portable build
	LUA_CPATH='$(CURDIR)/build/portable/?.so;;' LTLS_EXPECT_PORTABLE=1 busted --lua=$(LUA) \
		--cpath='$(CURDIR)/build/portable/?.so' $(BUSTED_FLAGS) $(PORTABLE_SPECS)

ci-checks:: test-portable
