#!/usr/bin/env bash
# bench-oci.sh: `podman run --rm IMAGE /bin/true` with warden-oci as the
# runtime beside runc, in ONE hyperfine run (rootless podman, cgroupfs), as
# a median ratio. The image is the test image (busybox-static) loaded from a
# tarball. Run as an unprivileged user (as root it re-runs itself as the
# test user).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/local/go/bin/go ] && export PATH=/usr/local/go/bin:$PATH
W=${WARDEN:-$PWD/bin/warden}
[ -x "$W" ] || make build
if [ "$(id -u)" = 0 ]; then
	u=${WARDEN_TEST_USER:-wardentest}
	tmp=$(mktemp -d /tmp/warden-bench.XXXXXX); chmod 755 "$tmp"; cp "$W" "$tmp/warden"; ln -s warden "$tmp/warden-oci"
	cp "$0" "$tmp/bench-oci.sh"
	go run ./scripts/mkimage -format docker "$tmp/busybox.tar"
	chmod a+r "$tmp/busybox.tar"
	chown "$u" "$tmp"
	cd "$tmp" && exec setpriv --reuid="$u" --regid="$u" --init-groups env -i HOME="$tmp" PATH=/usr/bin:/bin:/usr/sbin:/sbin \
		XDG_RUNTIME_DIR="$tmp/run" WARDEN="$tmp/warden" IMAGE="$tmp/busybox.tar" RUNS="${RUNS:-30}" bash "$tmp/bench-oci.sh"
fi
RUNS=${RUNS:-30}
mkdir -p "${XDG_RUNTIME_DIR:?}"
OCI=$(dirname "$W")/warden-oci
[ -e "$OCI" ] || ln -s "$W" "$OCI"
P="podman --cgroup-manager cgroupfs"
$P load -q -i "${IMAGE:?}" >/dev/null
U="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
out=$(mktemp -d)
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$out/r.json" \
	-n warden "$P --runtime $OCI run --rm $U busybox:latest /bin/true" \
	-n runc "$P --runtime runc run --rm $U busybox:latest /bin/true" >/dev/null
python3 - "$out/r.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
for k in ("warden", "runc"):
    print(f"podman run --rm, {k:6s} median {r[k]:7.1f} ms")
print(f"ratio warden/runc {r['warden']/r['runc']:.2f}")
PY
$P unshare rm -rf "$HOME/.local/share/containers" 2>/dev/null || true
rm -rf "$out"
