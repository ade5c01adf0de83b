/*
 * Files for the pure-Lua helpers. Private files (tls.tofu's pin file): Lua's
 * io can neither create a file exclusively nor choose its mode, so a file
 * that holds trust decisions is written here. File stamps: Lua cannot stat,
 * and a cache of what was read from a file must know when it changed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ltls.h"

static int fail_errno(lua_State *L, const char *what, const char *path, int err)
{
	lua_pushnil(L);
	lua_pushfstring(L, "%s %s: %s", what, path, strerror(err));
	lua_pushinteger(L, err);
	return 3;
}

/*
 * core.replace_file(path, data) -> true | nil, message, errno
 *
 * Writes data to a new file in path's directory, created exclusively
 * (mkstemp: O_EXCL, mode 0600, a name nobody else holds, never through a
 * symlink), flushes it to disk and renames it over path: a reader sees the
 * old file or the new one, never half of one, and nobody else can have
 * opened the new one first.
 */
int ltls_replace_file(lua_State *L)
{
	size_t plen, dlen, off = 0;
	const char *path = luaL_checklstring(L, 1, &plen);
	const char *data = luaL_checklstring(L, 2, &dlen);
	/* the template lives in a userdata: every Lua allocation is done before
	 * the descriptor exists, so nothing below can raise and leak it */
	char *tmp = lua_newuserdata(L, plen + sizeof ".XXXXXX");
	int fd, err;

	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".XXXXXX", sizeof ".XXXXXX");
	fd = ltls_mkstemp(tmp);
	if (fd < 0)
		return fail_errno(L, "cannot create a file next to", path, errno);
	if (fchmod(fd, S_IRUSR | S_IWUSR) != 0)
		goto failed;
	while (off < dlen) {
		ssize_t n = write(fd, data + off, dlen - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto failed;
		}
		off += (size_t)n;
	}
	if (fsync(fd) != 0)
		goto failed;
	if (close(fd) != 0) {
		fd = -1;
		goto failed;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto failed;
	lua_pushboolean(L, 1);
	return 1;
failed:
	err = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return fail_errno(L, "cannot write", path, err);
}

/*
 * core.mkdir(path) -> true | nil, message, errno
 *
 * One directory, mode 0700 (before the umask), for files only their owner
 * may read. An existing directory is success.
 */
int ltls_mkdir(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct stat st;
	int err;

	if (mkdir(path, S_IRWXU) == 0) {
		lua_pushboolean(L, 1);
		return 1;
	}
	err = errno;
	if (err == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		lua_pushboolean(L, 1);
		return 1;
	}
	return fail_errno(L, "cannot create the directory", path, err);
}

/*
 * core.file_stamp(path [, settle]) -> stamp | nil
 *
 * A string that changes whenever the file path names is replaced or written:
 * its device, inode, size, and modification and change times. nil when stat
 * fails, or when the file changed within the last `settle` seconds (default
 * 2): file times come from a coarse clock, so two writes within one tick can
 * leave equal stamps, while a write after a settled stamp always gets a later
 * change time. For caches of what was read from the file (tls.config_for).
 */
int ltls_file_stamp(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	lua_Number settle = luaL_optnumber(L, 2, 2);
	struct stat st;
	time_t changed;
	char stamp[128];

	if (stat(path, &st) != 0) {
		lua_pushnil(L);
		return 1;
	}
	changed = st.st_ctime > st.st_mtime ? st.st_ctime : st.st_mtime;
	if (!(difftime(time(NULL), changed) >= settle)) {
		lua_pushnil(L);
		return 1;
	}
	snprintf(stamp, sizeof stamp, "%llu:%llu:%lld:%lld:%lld",
	    (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
	    (long long)st.st_size, (long long)st.st_mtime, (long long)st.st_ctime);
	lua_pushstring(L, stamp);
	return 1;
}
