#!/usr/bin/env bash
# bench-seccomp.sh: the cost of the default seccomp profile on a
# syscall-heavy payload (dd with 1-byte blocks: 4 million read/write calls),
# `--seccomp default` against `--seccomp none`, measured in ONE hyperfine
# run and printed as the median ratio (target <= 1.05). Run as an
# unprivileged user (as root it re-runs itself as the test user).
set -euo pipefail
cd "$(dirname "$0")/.."
W=${WARDEN:-$PWD/bin/warden}
[ -x "$W" ] || make build
if [ "$(id -u)" = 0 ]; then
	u=${WARDEN_TEST_USER:-wardentest}
	tmp=$(mktemp -d /tmp/warden-bench.XXXXXX); chmod 755 "$tmp"; cp "$W" "$tmp/warden"; cp "$0" "$tmp/bench-seccomp.sh"
	trap 'rm -rf "$tmp"' EXIT
	cd "$tmp" && setpriv --reuid="$u" --regid="$u" --init-groups env -i HOME="$tmp" PATH=/usr/bin:/bin \
		WARDEN="$tmp/warden" RUNS="${RUNS:-10}" COUNT="${COUNT:-2000000}" bash "$tmp/bench-seccomp.sh"
	exit
fi
command -v hyperfine >/dev/null || { echo "bench-seccomp: hyperfine is not installed" >&2; exit 1; }
RUNS=${RUNS:-10}
COUNT=${COUNT:-2000000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$out"
dd="dd if=/dev/zero of=/dev/null bs=1 count=$COUNT status=none"
# Check first that the filter is really there (and really absent), so the
# ratio compares what it claims to.
[ "$("$W" run --seccomp default -- grep -c '^Seccomp:.2' /proc/self/status)" = 1 ] || { echo "bench-seccomp: no filter under default" >&2; exit 1; }
[ "$("$W" run --seccomp none -- grep -c '^Seccomp:.0' /proc/self/status)" = 1 ] || { echo "bench-seccomp: a filter under none" >&2; exit 1; }
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$out/r.json" \
	-n default "$W run --seccomp default -- $dd" \
	-n none "$W run --seccomp none -- $dd" >/dev/null
python3 - "$out/r.json" "$COUNT" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
calls = 2 * int(sys.argv[2])
med = {k: v["median"] for k, v in r.items()}
for k in ("default", "none"):
    print(f"{k:8s} median {med[k]*1000:8.1f} ms  (mean {r[k]['mean']*1000:.1f} ± {r[k]['stddev']*1000:.1f} ms, {r[k]['median']/calls*1e9:.0f} ns per syscall)")
ratio = med["default"] / med["none"]
print(f"ratio default/none {ratio:.3f}  (target <= 1.05; {(med['default']-med['none'])/calls*1e9:+.1f} ns per syscall)")
PY
