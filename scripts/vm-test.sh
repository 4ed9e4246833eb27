#!/usr/bin/env bash
# scripts/vm-test.sh: the VM lane. Runs, as uid 1000 inside a delegated
# cgroup2 subtree of a throwaway QEMU VM (scripts/vmlane/run-in-vm.sh), where
# the memory, pids and cpu controllers are real:
#   1. the sandbox/cgroup package tests (a static test binary), with
#      WARDEN_VMLANE=1 so a test that would skip for lack of controllers fails;
#   2. the real static warden binary (`make`, or $WARDEN_BIN) end to end
#      (testdata/vm/cases.sh): a memory hog under --memory 64M ends as "oom"
#      with memory_peak within a page of 64 MiB; a fork bomb under --pids 64
#      --timeout 3s is held at 64 and ends by timeout (124); --cpus 0.5 on a
#      busy loop uses ~50% of a CPU (and ~100% without it); --limits required
#      with an undelegated controller refuses with 125 and the fix; `warden
#      oci` containers with linux.resources: a memory hog ends by OOM at the
#      limit, pause freezes and resume thaws, update lowers and raises pids
#      and memory, an undelegated controller refuses create with 125; and no
#      cgroup directory is left behind after any case.
# The guest side is testdata/vm/guest.sh.
#
# usage: scripts/vm-test.sh [-run REGEXP] [-cases REGEXP]
#   -run REGEXP    package tests to run (default: all; "-" runs none)
#   -cases REGEXP  warden cases to run (default: all; "-" runs none): quiet,
#                  oom, forkbomb, cpu-half, cpu-free, payload-sigkill, concurrent,
#                  required-undelegated, best-effort-undelegated, pause, oci-oom,
#                  oci-pause, oci-update, oci-undelegated
# Environment: WARDEN_BIN, a static warden binary to test instead of building
# bin/warden with make; VMLANE_* as scripts/vmlane/run-in-vm.sh documents.
# Exit status: non-zero when a test or case fails, when none ran, or when the
# VM does not report.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
run=. cases=.
while [ $# -gt 0 ]; do
	case $1 in
	-run) run=$2; shift 2 ;;
	-cases) cases=$2; shift 2 ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 2 ;;
	esac
done

t0=$(date +%s.%N)
work=$(mktemp -d "${TMPDIR:-/tmp}/warden-vmtest.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "vm-test: building the static sandbox/cgroup test binary" >&2
CGO_ENABLED=0 go test -c -trimpath -o "$work/cgroup.test" ./sandbox/cgroup
if [ -n "${WARDEN_BIN:-}" ]; then
	cp "$WARDEN_BIN" "$work/warden"
else
	echo "vm-test: building bin/warden (make)" >&2
	make -s build >&2
	cp bin/warden "$work/warden"
fi
# The guest has no dynamic loader or libraries: the binary must be static.
if file -b "$work/warden" 2>/dev/null | grep -q 'dynamically linked'; then
	echo "vm-test: the warden binary is dynamically linked; the VM lane needs a static one (make)" >&2
	exit 1
fi
chmod 0755 "$work/warden"
cp testdata/vm/cases.sh "$work/cases.sh"
t_built=$(date +%s.%N)

# Not under set -e: a failing lane still gets its summary below.
set +e
VMLANE_MEM=${VMLANE_MEM:-1G} scripts/vmlane/run-in-vm.sh -t 240 \
	-f "$work/warden" -f "$work/cases.sh" \
	"$work/cgroup.test" testdata/vm/guest.sh "$run" "$cases" | tee "$work/out.log"
rc=${PIPESTATUS[0]}
set -e
pass=$(grep -c -- '^--- PASS' "$work/out.log" || true)
fail=$(grep -c -- '^--- FAIL' "$work/out.log" || true)
skip=$(grep -c -- '^--- SKIP' "$work/out.log" || true)
wpass=$(grep -c -- '^--- PASS: warden/' "$work/out.log" || true)
echo "vm-test: $(awk -v a="$t0" -v b="$t_built" -v c="$(date +%s.%N)" 'BEGIN { printf "%.1fs wall (build %.1fs, VM lane %.1fs)", c - a, b - a, c - b }'), exit $rc"
echo "vm-test: $pass passed ($wpass of them warden cases), $fail failed, $skip skipped"
grep -E '^ *(figure|note): ' "$work/out.log" | sed -E 's/^ *(figure|note): /vm-test: \1: /' || true
if [ "$rc" = 0 ] && [ "$pass" = 0 ]; then echo "vm-test: nothing ran" >&2; exit 1; fi
if [ "$rc" = 0 ] && [ "$fail" != 0 ]; then rc=1; fi
exit "$rc"
