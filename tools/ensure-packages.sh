#!/bin/sh
# Install the named Debian packages that are missing. Runs apt only when
# something is missing, and only as root; otherwise it says what to install.
# --check: never install; name the missing packages and fail (a plain build).
check=""
if [ "${1-}" = "--check" ]; then
	check=1
	shift
	# not a Debian system: nothing to check against (pkg-config and the
	# compiler report what is missing)
	command -v dpkg-query >/dev/null 2>&1 || exit 0
fi
missing=""
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ -n "$check" ]; then
	echo "missing Debian packages:$missing (run make deps as root, or: sudo apt-get install$missing)" >&2
	exit 1
fi
if [ "$(id -u)" != 0 ]; then
	echo "missing Debian packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null && apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
