# In-memory engine and event-loop integration (doc/engine.md).
#   make soak-engine   10,000 engine handshakes, memory must stay flat
#                      (make test runs the same check over 1,000)
#   make check-yield   runs every tls.cqueues path and the cqueues HTTPS
#                      server, then greps all their output for Lua's
#                      "attempt to yield across a C-call boundary"

ENGINE_PKGS := lua-busted lua-cqueues lua-socket openssl curl
YIELD_LOG   := build/check-yield.log

.PHONY: engine-deps soak-engine check-yield

engine-deps:
	@sh tools/ensure-packages.sh $(ENGINE_PKGS)

soak-engine: engine-deps build
	ENGINE_SOAK_N=10000 busted --lua=$(LUA) --filter=stays.flat spec/engine_spec.lua

check-yield: engine-deps build
	@mkdir -p build
	busted --lua=$(LUA) spec/cqueues_spec.lua spec/eventloop_spec.lua > $(YIELD_LOG) 2>&1 \
	  || { cat $(YIELD_LOG); exit 1; }
	@if grep -n "C-call boundary" $(YIELD_LOG) | grep -v "0 mention a C-call boundary\|no C-call boundary"; then \
	  echo "check-yield: a yield crossed a C-call boundary (see $(YIELD_LOG))"; exit 1; fi
	@grep -q "0 mention a C-call boundary" $(YIELD_LOG) && grep -q "no C-call boundary" $(YIELD_LOG) \
	  || { echo "check-yield: the specs did not report their error scan"; exit 1; }
	@grep "C-call boundary\|successes" $(YIELD_LOG)
	@echo "check-yield: no yield across a C-call boundary on any adapter path"

ci-checks:: check-yield
