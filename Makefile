# lua-tls: build, test and demo. `make demo` and `make test` install what
# they need on Debian (as root) when it is missing.

# Which Lua to build and test for: 5.1, 5.2, 5.3, 5.4 or jit (OpenResty's
# LuaJIT 2.1, Debian's luajit2). 5.4 builds into build/, the others into
# build/<version>/, so the builds live side by side (mk/versions.mk).
LUA_VERSION ?= 5.4
ifeq ($(LUA_VERSION),jit)
LUA        ?= luajit
LUA_PC     ?= luajit
LUA_DEV_PKGS := luajit2 libluajit2-5.1-dev
else
LUA        ?= lua$(LUA_VERSION)
LUA_PC     ?= lua$(LUA_VERSION)
LUA_DEV_PKGS := lua$(LUA_VERSION) $(if $(filter 5.1,$(LUA_VERSION)),liblua5.1-0-dev,liblua$(LUA_VERSION)-dev)
endif
PKG_CONFIG ?= pkg-config
CC         ?= cc
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

# BUILD: where the module goes (make test-libressl builds a second one;
# a Lua other than 5.4 builds into build/<version>).
BUILD  ?= $(if $(filter 5.4,$(LUA_VERSION)),build,build/$(LUA_VERSION))
SRCS   := $(wildcard src/*.c)
OBJS   := $(SRCS:src/%.c=$(BUILD)/obj/%.o)
MODULE := $(BUILD)/tls/core.so
# Which libtls and which Lua the objects were built for; rewritten only when
# that changes, so switching libraries (LIBTLS_DIR, an upgraded libtls) or
# Lua versions into one BUILD dir (test-portable, test-libressl) rebuilds.
LIBTLS_ID := $(BUILD)/libtls.id

# Debian packages the build, the suite and the demo use (Debian's lua-busted,
# lua-socket, lua-cqueues and lua-dkjson serve every Lua version).
APT_PKGS := lua5.4 liblua5.4-dev libtls-dev libssl-dev pkg-config gcc make openssl \
            lua-busted lua-socket lua-cqueues lua-dkjson ca-certificates curl gnutls-bin nginx luarocks procps python3 \
            nghttp2-server lua-zlib

export LUA_PATH  := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;
export LUA_CPATH := $(CURDIR)/$(BUILD)/?.so;;

.PHONY: all build deps deps-build test demo clean install ci-checks print-packages FORCE
all: build
build: $(MODULE)

$(MODULE): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(OBJS) $(LDFLAGS) $(DEPS_LIBS)

$(BUILD)/obj/%.o: src/%.c src/ltls.h src/compat.h $(LIBTLS_ID) | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBTLS_ID): FORCE
	@mkdir -p $(dir $@)
	@id='$(TLS_CFLAGS) $(TLS_LIBS) $(realpath $(TLS_SO)) lua=$(LUA_VERSION) $(DEPS_CFLAGS)'; \
	  echo "$$id" | cmp -s - $@ || echo "$$id" > $@
FORCE:

# Packages: `make deps` installs what the build, the suite and the demo use
# (root only; otherwise it says what is missing), `make deps ALL=1` also what
# the extra checks use (CI). `make test` and `make demo` call it; a plain
# `make` only checks the build's packages and names the missing ones.
deps:
	@sh tools/ensure-packages.sh $(APT_PKGS) $(LUA_DEV_PKGS) $(if $(ALL),$(EXTRA_APT_PKGS))
deps-build:
	@sh tools/ensure-packages.sh --check $(LUA_DEV_PKGS) libtls-dev libssl-dev pkg-config gcc

BUSTED_FLAGS ?=
test: deps build
	busted --lua=$(LUA) --cpath='$(BUILD)/?.so' $(BUSTED_FLAGS) spec

# The demo needs only the build, the Lua interpreter and the openssl CLI
# (for its throwaway CA), not the test toolchain.
demo: build
	@sh tools/ensure-packages.sh openssl
	$(LUA) examples/demo.lua

# For LUA_VERSION's Lua (luarocks knows LuaJIT as 5.1, with its own headers)
# and LIBTLS_DIR's libtls when given (with the rpath its libssl needs).
comma := ,
LUAROCKS_LUA  := $(if $(filter jit,$(LUA_VERSION)),5.1,$(LUA_VERSION))
LUAROCKS_VARS := $(if $(filter jit,$(LUA_VERSION)),LUA_INCDIR=/usr/include/luajit-2.1) \
                 $(if $(LIBTLS_DIR),LIBTLS_DIR=$(LIBTLS_DIR) 'LIBFLAG=-shared -Wl$(comma)--disable-new-dtags')
install: build
	luarocks --lua-version $(LUAROCKS_LUA) make rockspec/lua-tls-scm-1.rockspec $(LUAROCKS_VARS)

clean:
	rm -rf build

print-packages:
	@echo $(APT_PKGS) $(EXTRA_APT_PKGS)

# Bounded checks CI runs after `make test`; mk/*.mk fragments add theirs.
ci-checks::
	@echo "ci-checks: running the bounded extra checks"

# Other make fragments add their targets and extend ci-checks.
-include mk/*.mk
