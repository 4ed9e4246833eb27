#!/usr/bin/env bash
# as-user.sh BINARY ARGS...: the `go test -exec` wrapper. Run as root, it runs
# the test binary as the unprivileged test user; otherwise it runs it as is.
set -euo pipefail
u=${WARDEN_TEST_USER:-wardentest}
if [ "$(id -u)" != 0 ] || [ -n "${WARDEN_AS_ROOT:-}" ]; then
	exec "$@"
fi
home=$(getent passwd "$u" | cut -d: -f6)
# go test builds into private 0700 directories under $GOTMPDIR: open the
# path down to the binary for the test user.
d=$(dirname "$1")
while [ -n "${GOTMPDIR:-}" ] && [ "$d" != "$GOTMPDIR" ] && [ "$d" != / ]; do
	chmod 755 "$d"
	d=$(dirname "$d")
done
exec setpriv --reuid="$u" --regid="$u" --init-groups \
	env -i HOME="$home" USER="$u" LOGNAME="$u" PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
	LANG=C.UTF-8 TMPDIR=/tmp WARDEN_BIN="${WARDEN_BIN:-}" WARDEN_SYMBIN="${WARDEN_SYMBIN:-}" "$@"
