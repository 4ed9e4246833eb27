#!/usr/bin/env bash
# as-user.sh BINARY ARGS...: the `go test -exec` wrapper. Run as root, it runs
# the test binary as the unprivileged test user; otherwise it runs it as is.
set -euo pipefail
u=${WARDEN_TEST_USER:-wardentest}
if [ "$(id -u)" != 0 ] || [ -n "${WARDEN_AS_ROOT:-}" ]; then
	exec "$@"
fi
home=$(getent passwd "$u" | cut -d: -f6)
chmod 755 "$(dirname "$1")"
exec setpriv --reuid="$u" --regid="$u" --init-groups \
	env -i HOME="$home" USER="$u" LOGNAME="$u" PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
	LANG=C.UTF-8 TMPDIR=/tmp WARDEN_BIN="${WARDEN_BIN:-}" "$@"
