#!/usr/bin/env bash
# bench-layers.sh: what layers cost (docs/layers.md), in ONE hyperfine run
# each, as median ratios: a plain `warden run` beside `--overlay` of a project
# and `--rootfs`; an image's warm start (by name, nothing to unpack) beside a
# plain run and beside `podman run --rm` of the same image (rootless, runc,
# cgroupfs, when podman is installed); an image's cold import. Run as an
# unprivileged user (as root it re-runs itself as the test user).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/local/go/bin/go ] && export PATH=/usr/local/go/bin:$PATH
W=${WARDEN:-$PWD/bin/warden}
[ -x "$W" ] || make build
if [ "$(id -u)" = 0 ]; then
	u=${WARDEN_TEST_USER:-wardentest}
	tmp=$(mktemp -d /tmp/warden-bench.XXXXXX); chmod 755 "$tmp"; cp "$W" "$tmp/warden"; cp "$0" "$tmp/bench-layers.sh"
	go run ./scripts/mkimage -format docker "$tmp/busybox.tar"
	chmod a+r "$tmp/busybox.tar"
	chown "$u" "$tmp" # podman keeps its store under $HOME
	cd "$tmp" && exec setpriv --reuid="$u" --regid="$u" --init-groups env -i HOME="$tmp" PATH=/usr/bin:/bin:/usr/sbin \
		XDG_RUNTIME_DIR="$tmp/run" WARDEN="$tmp/warden" IMAGE="$tmp/busybox.tar" RUNS="${RUNS:-200}" bash "$tmp/bench-layers.sh"
fi
RUNS=${RUNS:-200}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
IMAGE=${IMAGE:-$out/busybox.tar}
[ -f "$IMAGE" ] || go run ./scripts/mkimage -format docker "$IMAGE"
export XDG_DATA_HOME=$out/data
mkdir -p "$out/proj/src" "$out/root/bin"
for i in $(seq 200); do echo "file $i" >"$out/proj/src/f$i.c"; done
cp /bin/busybox "$out/root/bin/busybox" && ln -s busybox "$out/root/bin/true"
cd "$out/proj"
"$W" image import "$IMAGE" >/dev/null

median() { python3 -c 'import json,sys; r={x["command"]:x["median"]*1000 for x in json.load(open(sys.argv[1]))["results"]}; [print(f"{k:16s} median {v:7.2f} ms") for k,v in r.items()]' "$1"; }
ratio() { python3 -c 'import json,sys; r={x["command"]:x["median"] for x in json.load(open(sys.argv[1]))["results"]}; print(f"ratio {sys.argv[2]}/{sys.argv[3]} {r[sys.argv[2]]/r[sys.argv[3]]:.2f}")' "$@"; }

hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$out/o.json" \
	-n run "$W run -- /bin/true" \
	-n overlay "$W run --overlay . -- /bin/true" \
	-n rootfs "$W run --rootfs $out/root -- /bin/true" \
	-n image-warm "$W run --image busybox:latest -- /bin/true" >/dev/null
median "$out/o.json"
ratio "$out/o.json" overlay run
ratio "$out/o.json" rootfs run
ratio "$out/o.json" image-warm run

# Cold import: a fresh store each time.
hyperfine -N --warmup 2 --runs 20 --export-json "$out/i.json" \
	--prepare "rm -rf $out/cold" \
	-n import-cold "env XDG_DATA_HOME=$out/cold $W image import $IMAGE" \
	-n start-by-path "$W run --image $IMAGE -- /bin/true" >/dev/null
median "$out/i.json"

if command -v podman >/dev/null && podman --cgroup-manager cgroupfs --runtime runc load -q -i "$IMAGE" >/dev/null 2>&1; then
	P="podman --cgroup-manager cgroupfs --runtime runc run --rm --net none busybox:latest /bin/true"
	hyperfine -N --warmup 3 --runs 30 --export-json "$out/p.json" \
		-n warden-image "$W run --image busybox:latest -- /bin/true" \
		-n podman "$P" >/dev/null
	median "$out/p.json"
	ratio "$out/p.json" warden-image podman
	podman rmi -f busybox:latest >/dev/null 2>&1 || true
else
	echo "podman: not installed or cannot load the image here; skipped (apt install podman runc)"
fi
