#!/usr/bin/env bash
# bench.sh: startup cost of `warden run -- /bin/true` beside bwrap and unshare,
# measured in ONE hyperfine run, printed as median ratios. Run as an
# unprivileged user (as root it re-runs itself as the test user).
set -euo pipefail
cd "$(dirname "$0")/.."
W=${WARDEN:-$PWD/bin/warden}
[ -x "$W" ] || make build
if [ "$(id -u)" = 0 ]; then
	u=${WARDEN_TEST_USER:-wardentest}
	tmp=$(mktemp -d /tmp/warden-bench.XXXXXX); chmod 755 "$tmp"; cp "$W" "$tmp/warden"; cp "$0" "$tmp/bench.sh"
	cd "$tmp" && exec setpriv --reuid="$u" --regid="$u" --init-groups env -i HOME="$tmp" PATH=/usr/bin:/bin \
		WARDEN="$tmp/warden" RUNS="${RUNS:-300}" bash "$tmp/bench.sh"
fi
RUNS=${RUNS:-300}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$out"
hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$out/r.json" \
	-n warden "$W run -- /bin/true" \
	-n bwrap "bwrap --unshare-all --die-with-parent --new-session --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp /bin/true" \
	-n unshare "unshare -Urmpf --mount-proc /bin/true" >/dev/null
python3 - "$out/r.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
med = {k: v["median"] * 1000 for k, v in r.items()}
for k in ("warden", "bwrap", "unshare"):
    print(f"{k:8s} median {med[k]:7.2f} ms  (mean {r[k]['mean']*1000:.2f} ± {r[k]['stddev']*1000:.2f} ms)")
print(f"ratio warden/bwrap   {med['warden']/med['bwrap']:.2f}")
print(f"ratio warden/unshare {med['warden']/med['unshare']:.2f}")
PY

# What a network helper adds to startup (issue 7): none vs pasta vs slirp4netns, one run
# (--as-root in all three: slirp4netns needs a mapped root in the jail).
if command -v pasta >/dev/null && command -v slirp4netns >/dev/null && [ -r /dev/net/tun ] && [ -w /dev/net/tun ]; then
	hyperfine -N --warmup 5 --runs "$((RUNS / 5 + 10))" --export-json "$out/n.json" \
		-n none "$W run --as-root --net none -- /bin/true" \
		-n pasta "$W run --as-root --net pasta -- /bin/true" \
		-n slirp4netns "$W run --as-root --net slirp4netns -- /bin/true" >/dev/null
	python3 - "$out/n.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
for k in ("none", "pasta", "slirp4netns"):
    print(f"--net {k:12s} median {r[k]:7.2f} ms")
print(f"ratio pasta/none       {r['pasta']/r['none']:.2f}")
print(f"ratio slirp4netns/none {r['slirp4netns']/r['none']:.2f}")
PY
else
	echo "network startup: skipped (pasta/slirp4netns or a usable /dev/net/tun missing)"
fi
