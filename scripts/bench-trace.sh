#!/usr/bin/env bash
# bench-trace.sh: what tracing costs (docs/trace.md), in ONE hyperfine run,
# as median ratios against the same build untraced: `make` of a small C
# project (40 files, each including <stdio.h> and <stdlib.h>) with nothing
# traced, with the project traced (--trace .: what a build step's inputs and
# outputs need), and with every directory the jail shows from the host
# traced (/usr, /etc and the project: what `warden policy learn` does); and
# the same for a read-mostly walk (find and cat of /usr/share/doc). Run as an
# unprivileged user (as root it re-runs itself as the test user).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/local/go/bin/go ] && export PATH=/usr/local/go/bin:$PATH
W=${WARDEN:-$PWD/bin/warden}
[ -x "$W" ] || make build
if [ "$(id -u)" = 0 ]; then
	u=${WARDEN_TEST_USER:-wardentest}
	tmp=$(mktemp -d /tmp/warden-bench.XXXXXX); chmod 755 "$tmp"; cp "$W" "$tmp/warden"; cp "$0" "$tmp/bench-trace.sh"
	chown "$u" "$tmp"
	cd "$tmp" && exec setpriv --reuid="$u" --regid="$u" --init-groups env -i HOME="$tmp" PATH=/usr/bin:/bin:/usr/sbin \
		WARDEN="$tmp/warden" RUNS="${RUNS:-10}" bash "$tmp/bench-trace.sh"
fi
RUNS=${RUNS:-10}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/proj"
for i in $(seq 40); do
	printf '#include <stdio.h>\n#include <stdlib.h>\nint f%d(void){ char *p = malloc(%d); printf("%%p", p); free(p); return %d; }\n' "$i" "$i" "$i" >"$out/proj/f$i.c"
done
printf 'int main(void){ return 0; }\n' >"$out/proj/main.c"
printf 'OBJS := $(patsubst %%.c,%%.o,$(wildcard *.c))\nprog: $(OBJS)\n\tcc -o $@ $(OBJS)\n%%.o: %%.c\n\tcc -O0 -c $<\nclean:\n\trm -f prog *.o\n' >"$out/proj/Makefile"
cd "$out/proj"

ratios() { python3 -c '
import json,sys
r={x["command"]:x["median"] for x in json.load(open(sys.argv[1]))["results"]}
base=r[sys.argv[2]]
for k,v in r.items(): print(f"{k:14s} median {v*1000:8.1f} ms  {v/base:5.2f}x of {sys.argv[2]}")' "$@"; }

make="sh -c 'make -s clean && make -s -j2'"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$out/make.json" \
	-n make "$W run -- $make" \
	-n make-trace-proj "$W run --trace . -- $make" \
	-n make-trace-all "$W run --trace /usr --trace /etc --trace . -- $make" >/dev/null
echo "== make of 41 C files (make -j2), $RUNS runs each"
ratios "$out/make.json" make

walk="sh -c 'find /usr/share/doc -type f -print0 | head -z -n 3000 | xargs -0 cat >/dev/null'"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$out/walk.json" \
	-n walk "$W run -- $walk" \
	-n walk-trace "$W run --trace /usr -- $walk" >/dev/null
echo "== find + cat of 3000 files under /usr/share/doc, $RUNS runs each"
ratios "$out/walk.json" walk
