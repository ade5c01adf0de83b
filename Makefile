# lua-tls: build, test and demo. `make demo` and `make test` install what
# they need on Debian (as root) when it is missing.

LUA        ?= lua5.4
PKG_CONFIG ?= pkg-config
CC         ?= cc
LUA_PC     ?= lua5.4
CFLAGS     ?= -O2 -g
WARN       := -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes
# LIBTLS_DIR=<prefix> builds against the libtls installed under <prefix>
# (LibreSSL's, for example: make test-libressl) with an rpath to its lib/
# (DT_RPATH, which also finds the libssl that its libtls loads);
# without it, the system's libtls (Debian: LibreTLS) found by pkg-config.
# The module also links libcrypto, the one that libtls uses (tls.core.library).
LIBTLS_DIR ?=
ifneq ($(LIBTLS_DIR),)
TLS_CFLAGS := -I$(LIBTLS_DIR)/include
TLS_LIBS   := -L$(LIBTLS_DIR)/lib -Wl,--disable-new-dtags,-rpath,$(LIBTLS_DIR)/lib -ltls -lcrypto
TLS_SO     := $(LIBTLS_DIR)/lib/libtls.so
else
TLS_CFLAGS  = $(shell $(PKG_CONFIG) --cflags libtls libcrypto 2>/dev/null)
TLS_LIBS    = $(shell $(PKG_CONFIG) --libs libtls libcrypto 2>/dev/null || echo -ltls -lcrypto)
TLS_SO      = $(shell $(CC) -print-file-name=libtls.so)
endif
DEPS_CFLAGS = $(TLS_CFLAGS) $(shell $(PKG_CONFIG) --cflags $(LUA_PC) 2>/dev/null)
DEPS_LIBS   = $(TLS_LIBS)
ALL_CFLAGS  = -std=c99 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(WARN) $(DEPS_CFLAGS) $(CFLAGS)

# BUILD: where the module goes (make test-libressl builds a second one).
BUILD  ?= build
SRCS   := $(wildcard src/*.c)
OBJS   := $(SRCS:src/%.c=$(BUILD)/obj/%.o)
MODULE := $(BUILD)/tls/core.so
# Which libtls the objects were built for; rewritten only when that changes,
# so switching libraries (LIBTLS_DIR, an upgraded libtls) rebuilds the module.
LIBTLS_ID := $(BUILD)/libtls.id

# Debian packages the build, the suite and the demo use.
APT_PKGS := lua5.4 liblua5.4-dev libtls-dev libssl-dev pkg-config gcc make openssl \
            lua-busted lua-socket lua-cqueues lua-dkjson ca-certificates curl gnutls-bin nginx luarocks procps python3 \
            nghttp2-server

export LUA_PATH  := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;
export LUA_CPATH := $(CURDIR)/$(BUILD)/?.so;;

.PHONY: all build deps deps-build test demo clean install ci-checks print-packages FORCE
all: build
build: $(MODULE)

$(MODULE): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(OBJS) $(LDFLAGS) $(DEPS_LIBS)

$(BUILD)/obj/%.o: src/%.c src/ltls.h $(LIBTLS_ID) | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBTLS_ID): FORCE
	@mkdir -p $(dir $@)
	@id='$(TLS_CFLAGS) $(TLS_LIBS) $(realpath $(TLS_SO))'; \
	  echo "$$id" | cmp -s - $@ || echo "$$id" > $@
FORCE:

# Packages: `make deps` installs what the build, the suite and the demo use
# (root only; otherwise it says what is missing), `make deps ALL=1` also what
# the extra checks use (CI). `make test` and `make demo` call it; a plain
# `make` only checks the build's packages and names the missing ones.
deps:
	@sh tools/ensure-packages.sh $(APT_PKGS) $(if $(ALL),$(EXTRA_APT_PKGS))
deps-build:
	@sh tools/ensure-packages.sh --check lua5.4 liblua5.4-dev libtls-dev libssl-dev pkg-config gcc

BUSTED_FLAGS ?=
test: deps build
	busted --lua=$(LUA) $(BUSTED_FLAGS) spec

# The demo needs only the build, the Lua interpreter and the openssl CLI
# (for its throwaway CA), not the test toolchain.
demo: build
	@sh tools/ensure-packages.sh openssl
	$(LUA) examples/demo.lua

# Debian's luarocks defaults to Lua 5.1, which the rockspec refuses.
install: build
	luarocks --lua-version 5.4 make rockspec/lua-tls-scm-1.rockspec

clean:
	rm -rf build

print-packages:
	@echo $(APT_PKGS) $(EXTRA_APT_PKGS)

# Bounded checks CI runs after `make test`; mk/*.mk fragments add theirs.
ci-checks::
	@echo "ci-checks: running the bounded extra checks"

# Other make fragments add their targets and extend ci-checks.
-include mk/*.mk
