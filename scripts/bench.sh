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

# warden exec into a running jail beside a new jail and bwrap (issue 13).
"$W" run -d --name warden-bench -- sleep 3600 >/dev/null
trap '"$W" stop --timeout 1s warden-bench >/dev/null 2>&1; rm -rf "$out"' EXIT
hyperfine -N --warmup 10 --runs "$((RUNS / 3 + 10))" --export-json "$out/e.json" \
	-n exec "$W exec warden-bench -- /bin/true" \
	-n run "$W run -- /bin/true" \
	-n bwrap "bwrap --unshare-all --die-with-parent --new-session --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp /bin/true" >/dev/null
python3 - "$out/e.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
for k in ("exec", "run", "bwrap"):
    print(f"{k:6s} median {r[k]:7.2f} ms")
print(f"ratio exec/run   {r['exec']/r['run']:.2f}")
print(f"ratio exec/bwrap {r['exec']/r['bwrap']:.2f}")
PY

# 64 jails started at once, 4 rounds each, side by side (the CI shape: many
# short jobs at the same time).
B="bwrap --unshare-all --die-with-parent --new-session --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp /bin/true"
hyperfine -N --warmup 1 --runs 4 --export-json "$out/c.json" \
	-n warden "bash -c 'for i in \$(seq 64); do $W run -- /bin/true & done; wait'" \
	-n bwrap "bash -c 'for i in \$(seq 64); do $B & done; wait'" >/dev/null
python3 - "$out/c.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
for k in ("warden", "bwrap"):
    print(f"64 at once: {k:6s} mean {r[k]['mean']*1000:7.1f} ms per round of 64 (4 rounds)")
print(f"ratio 64-at-once warden/bwrap {r['warden']['mean']/r['bwrap']['mean']:.2f}")
PY

# Peak RSS of the host-side process (the jail's init shares warden's memory,
# so this is warden's own), the median of 20 runs each.
rss() { for i in $(seq 20); do /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; done | sort -n | sed -n 10p; }
if [ -x /usr/bin/time ]; then
	echo "peak RSS: warden $(rss $W run -- /bin/true) KiB, bwrap $(rss $B) KiB"
else
	echo "peak RSS: skipped (/usr/bin/time missing: apt install time)"
fi

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
