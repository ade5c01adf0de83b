/*
 * failalloc: fault injection through Lua's allocator.
 *
 * A host program with its own lua_Alloc. The script (hardening/failalloc_script.lua)
 * runs unarmed once to set up (require "tls", read the PEM files) and returns
 * ops(), a function doing a whole session: configs from PEM text, a client and
 * a server engine handshaking, send/receive, peer info, bad configs, close.
 * Then, in a fresh Lua state each time:
 *
 *   exhaustion:  for N = 1, 1+step, ... past the last allocation of ops(),
 *                every allocation from the N-th on fails (Lua's emergency
 *                collection and retry fail too), so a "not enough memory"
 *                error is raised at each allocation point in turn;
 *   every-Nth:   for N = 2..EVERY_MAX, each N-th allocation fails once (Lua
 *                then runs an emergency collection and retries), so
 *                collections land at arbitrary points inside the module.
 *
 * Each run must end with ops() returning or with a memory error; anything
 * else is reported and fails the run. Built with ASan+UBSan and run with
 * LeakSanitizer, it also proves that no run leaks: lua_close collects every
 * object, and whatever the module allocated outside Lua must be freed by then.
 * Descriptors are counted before and after each run too.
 *
 * libtls and OpenSSL allocate with malloc, not through the Lua allocator, so
 * only Lua's allocations (userdata, strings, tables, buffers) are failed here.
 *
 * usage: failalloc [-step K] [-every MAX] script.lua
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>

int luaopen_tls_core(lua_State *L);

static long alloc_count;     /* growing allocations since arming */
static long fail_from;       /* > 0: fail every allocation from this one on */
static long fail_every;      /* > 0: fail each allocation whose number is a multiple */
static int armed;
static long failures;

static void *failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	(void)ud;
	if (nsize == 0) {
		free(ptr);
		return NULL;
	}
	/* only allocations that grow may fail: Lua relies on shrinks working */
	if (armed && (ptr == NULL || nsize > osize)) {
		alloc_count++;
		if ((fail_from > 0 && alloc_count >= fail_from) ||
		    (fail_every > 0 && alloc_count % fail_every == 0)) {
			failures++;
			return NULL;
		}
	}
	return realloc(ptr, nsize);
}

static int panic(lua_State *L)
{
	fprintf(stderr, "failalloc: Lua panic: %s\n", lua_tostring(L, -1));
	abort();
}

static const char *script;

/* Descriptors this process holds: each run must give back all it opened. */
static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* One fresh state: set up unarmed, then run ops() armed. Returns 0 when ops
 * finished or failed for lack of memory, 1 on any other outcome. */
static int run_once(long from, long every, long *used)
{
	int fds = fd_count();
	lua_State *L = lua_newstate(failing_alloc, NULL);
	int rc, bad = 0;
	if (L == NULL) {
		fprintf(stderr, "failalloc: cannot create a Lua state\n");
		exit(2);
	}
	lua_atpanic(L, panic);
	lua_setwarnf(L, NULL, NULL);  /* __gc errors under memory failure: tolerated */
	luaL_openlibs(L);
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushcfunction(L, luaopen_tls_core);
	lua_setfield(L, -2, "tls.core");
	lua_pop(L, 1);
	if (luaL_dofile(L, script) != LUA_OK || !lua_isfunction(L, -1)) {
		fprintf(stderr, "failalloc: %s did not return ops(): %s\n", script,
		    lua_tostring(L, -1));
		exit(2);
	}
	alloc_count = 0;
	failures = 0;
	fail_from = from;
	fail_every = every;
	armed = 1;
	rc = lua_pcall(L, 0, 0, 0);
	armed = 0;
	*used = alloc_count;
	if (rc == LUA_ERRMEM) {
		/* the expected outcome once allocations fail */
	} else if (rc != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		if (msg == NULL || strstr(msg, "not enough memory") == NULL) {
			fprintf(stderr, "failalloc: %s %ld: unexpected error: %s\n",
			    from ? "exhaustion from" : "every", from ? from : every,
			    msg ? msg : "(not a string)");
			bad = 1;
		}
	} else if (failures > 0 && from > 0) {
		/* ops() finished although allocations failed: a memory error was
		 * swallowed somewhere (pcall without re-raise) */
		fprintf(stderr, "failalloc: exhaustion from %ld: ops() returned after "
		    "%ld failed allocations (a memory error was swallowed)\n",
		    from, failures);
		bad = 1;
	}
	lua_close(L);
	if (fd_count() != fds) {
		fprintf(stderr, "failalloc: %s %ld: %d descriptors before, %d after\n",
		    from ? "exhaustion from" : "every", from ? from : every, fds, fd_count());
		bad = 1;
	}
	return bad;
}

int main(int argc, char **argv)
{
	long step = 1, every_max = 40, total, used, n;
	int i, bad = 0, runs = 0;
	for (i = 1; i < argc - 1; i++) {
		if (strcmp(argv[i], "-step") == 0 && i + 1 < argc - 1)
			step = atol(argv[++i]);
		else if (strcmp(argv[i], "-every") == 0 && i + 1 < argc - 1)
			every_max = atol(argv[++i]);
		else
			break;
	}
	if (i != argc - 1 || step < 1) {
		fprintf(stderr, "usage: failalloc [-step K] [-every MAX] script.lua\n");
		return 2;
	}
	script = argv[i];

	/* a clean run counts the allocations ops() makes */
	if (run_once(0, 0, &total) != 0) {
		fprintf(stderr, "failalloc: ops() fails without any injected failure\n");
		return 1;
	}
	printf("failalloc: ops() makes %ld Lua allocations; exhausting memory from "
	    "allocation 1, %ld, %ld, ... and failing every 2nd..%ldth\n",
	    total, 1 + step, 1 + 2 * step, every_max);
	fflush(stdout);
	for (n = 1; n <= total + 1; n += step, runs++)
		bad += run_once(n, 0, &used);
	for (n = 2; n <= every_max; n++, runs++)
		bad += run_once(0, n, &used);
	printf("failalloc: %d runs, %d unexpected outcomes\n", runs, bad);
	fflush(stdout);
	return bad ? 1 : 0;
}
