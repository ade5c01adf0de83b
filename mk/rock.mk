# Release packaging: `make rock` builds the source rock of the release
# rockspec from `git archive` of the tree (uncommitted changes to tracked
# files included) and a local rocks server directory, build/rocks/, that
# LuaRocks installs from as from any rocks server:
#   luarocks --lua-version 5.4 install --server=build/rocks lua-tls
# spec/rock_spec.lua does exactly that into a scratch tree, offline.

ROCK_VERSION := 0.1.0
ROCK_REV     := 1
ROCK_NAME    := lua-tls-$(ROCK_VERSION)-$(ROCK_REV)
ROCK_SERVER  := build/rocks
ROCK_WORK    := build/rock-src

.PHONY: rock
rock:
	@rm -rf $(ROCK_WORK) && mkdir -p $(ROCK_WORK) $(ROCK_SERVER)
	@# the tarball the rockspec's source.url names, with its source.dir prefix
	tree=$$(git stash create 2>/dev/null); git archive --format=tar.gz \
		--prefix=lua-tls-$(ROCK_VERSION)/ -o $(ROCK_WORK)/v$(ROCK_VERSION).tar.gz $${tree:-HEAD}
	cp rockspec/$(ROCK_NAME).rockspec $(ROCK_WORK)/
	rm -f $(ROCK_SERVER)/$(ROCK_NAME).src.rock
	cd $(ROCK_WORK) && zip -q $(abspath $(ROCK_SERVER))/$(ROCK_NAME).src.rock \
		$(ROCK_NAME).rockspec v$(ROCK_VERSION).tar.gz
	cp rockspec/$(ROCK_NAME).rockspec $(ROCK_SERVER)/
	luarocks-admin make-manifest $(ROCK_SERVER)
	@echo "rock: $(ROCK_SERVER)/$(ROCK_NAME).src.rock"

# After adding a module or a C file to the scm rockspec.
.PHONY: release-rockspec
release-rockspec:
	lua5.4 tools/sync-release-rockspec.lua rockspec/$(ROCK_NAME).rockspec rockspec/lua-tls-scm-1.rockspec
