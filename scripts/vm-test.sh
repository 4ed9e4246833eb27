#!/usr/bin/env bash
# scripts/vm-test.sh: the VM lane. Builds the sandbox/cgroup test binary
# statically and runs it as uid 1000 inside a delegated cgroup2 subtree of a
# throwaway QEMU VM (scripts/vmlane/run-in-vm.sh), where the memory, pids and
# cpu controllers are real: a memory hog ends as "oom", a fork bomb is held at
# pids.max, cpu.max throttles a busy loop to half a CPU, "required" refuses an
# undelegated controller, and no cgroup is left behind. WARDEN_VMLANE=1 makes
# a test that would skip for lack of controllers fail instead.
#
# usage: scripts/vm-test.sh [-run REGEXP]   (default: every test of the package)
# Exit status: non-zero when a test fails or the VM does not report.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
run=.
if [ "${1:-}" = -run ]; then run=$2; fi

t0=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/warden-vmtest.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "vm-test: building the static sandbox/cgroup test binary" >&2
CGO_ENABLED=0 go test -c -trimpath -o "$work/cgroup.test" ./sandbox/cgroup

cat > "$work/guest.sh" <<'GUEST'
#!/bin/sh
# Runs in the VM as uid 1000, from $VMLANE_CGROUP/init.scope.
echo "guest: $(id); kernel $(uname -r); $(cat /proc/self/cgroup)"
echo "guest: delegated $VMLANE_CGROUP, controllers: $(cat "$VMLANE_CGROUP/cgroup.controllers")"
cd /tmp || exit 1
WARDEN_VMLANE=1 "$VMLANE_BIN" -test.v -test.count=1 -test.timeout=150s -test.run "$1"
rc=$?
left=$(find "$VMLANE_CGROUP" -mindepth 1 -type d ! -name init.scope)
if [ -n "$left" ]; then echo "guest: cgroups left behind: $left"; rc=1; fi
exit $rc
GUEST

VMLANE_MEM=${VMLANE_MEM:-1G} scripts/vmlane/run-in-vm.sh -t 240 "$work/cgroup.test" "$work/guest.sh" "$run" | tee "$work/out.log"
rc=${PIPESTATUS[0]}
pass=$(grep -c -- '^--- PASS' "$work/out.log" || true)
fail=$(grep -c -- '^--- FAIL' "$work/out.log" || true)
skip=$(grep -c -- '^--- SKIP' "$work/out.log" || true)
echo "vm-test: $(($(date +%s) - t0))s wall, exit $rc"
echo "vm-test: $pass passed, $fail failed, $skip skipped"
if [ "$rc" = 0 ] && [ "$pass" = 0 ]; then echo "vm-test: no test ran" >&2; exit 1; fi
exit "$rc"
