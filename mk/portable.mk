# PORTABLE=1 builds the C core with the portable system-call paths that
# BSD/macOS-style systems take (src/portable.h: socket/accept + fcntl
# instead of SOCK_CLOEXEC/SOCK_NONBLOCK/accept4, a local memmem, mkstemp +
# fcntl), so Linux proves them: `make PORTABLE=1 test` runs the whole suite
# on them. (MSG_NOSIGNAL stays: Linux has no SO_NOSIGPIPE to fall back to.)

PORTABLE ?= 0
ifeq ($(PORTABLE),1)
ALL_CFLAGS += -DLTLS_PORTABLE
endif

# Objects are rebuilt when PORTABLE changes (one stamp per setting).
$(OBJS): build/obj/portable-$(PORTABLE).stamp src/portable.h
build/obj/portable-$(PORTABLE).stamp:
	@mkdir -p $(dir $@)
	@rm -f build/obj/portable-*.stamp
	@touch $@

# CI: the specs that exercise sockets, descriptors, PEM detection and files
# on the portable build (about a minute), then the normal build back.
# spec/portable_spec.lua checks that the module really is the portable one.
PORTABLE_SPECS := spec/portable_spec.lua spec/core_client_spec.lua spec/core_server_spec.lua \
	spec/core_io_spec.lua spec/core_config_spec.lua spec/core_safety_spec.lua \
	spec/server_peers_spec.lua spec/hostile_client_spec.lua spec/tofu_spec.lua

.PHONY: test-portable
test-portable: deps
	$(MAKE) PORTABLE=1 build
	LTLS_EXPECT_PORTABLE=1 busted --lua=$(LUA) $(BUSTED_FLAGS) $(PORTABLE_SPECS)
	$(MAKE) PORTABLE=0 build

ci-checks:: test-portable
