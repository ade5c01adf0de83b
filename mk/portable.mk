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

# CI: the whole suite on a portable build of its own in build/portable
# (the normal build stays as it is). spec/portable_spec.lua checks that the
# module really is the portable one.
.PHONY: test-portable
test-portable:
	$(MAKE) --no-print-directory PORTABLE=1 BUILD=build/portable test

ci-checks:: test-portable
