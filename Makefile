# lua-tls: build, test and demo. `make demo` and `make test` install what
# they need on Debian (as root) when it is missing.

LUA        ?= lua5.4
PKG_CONFIG ?= pkg-config
CC         ?= cc
LUA_PC     ?= lua5.4
CFLAGS     ?= -O2 -g
WARN       := -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes
DEPS_CFLAGS = $(shell $(PKG_CONFIG) --cflags libtls $(LUA_PC) 2>/dev/null)
DEPS_LIBS   = $(shell $(PKG_CONFIG) --libs libtls 2>/dev/null || echo -ltls)
ALL_CFLAGS  = -std=c99 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(WARN) $(DEPS_CFLAGS) $(CFLAGS)

SRCS   := $(wildcard src/*.c)
OBJS   := $(SRCS:src/%.c=build/obj/%.o)
MODULE := build/tls/core.so

# Debian packages the build, the suite and the demo use.
APT_PKGS := lua5.4 liblua5.4-dev libtls-dev pkg-config gcc make openssl \
            lua-busted lua-socket lua-cqueues lua-dkjson ca-certificates curl gnutls-bin nginx luarocks procps python3

export LUA_PATH  := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;
export LUA_CPATH := $(CURDIR)/build/?.so;;

.PHONY: all build deps deps-build test demo clean install ci-checks print-packages
all: build
build: $(MODULE)

$(MODULE): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(OBJS) $(LDFLAGS) $(DEPS_LIBS)

build/obj/%.o: src/%.c src/ltls.h | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Install missing Debian packages (root only; otherwise say what is missing).
deps-build:
	@sh tools/ensure-packages.sh lua5.4 liblua5.4-dev libtls-dev pkg-config gcc
deps:
	@sh tools/ensure-packages.sh $(APT_PKGS)

BUSTED_FLAGS ?=
test: deps build
	busted --lua=$(LUA) $(BUSTED_FLAGS) spec

demo: deps build
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
