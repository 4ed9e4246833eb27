#!/bin/sh
# testdata/vm/guest.sh: the VM lane's test script (scripts/vm-test.sh passes it
# to scripts/vmlane/run-in-vm.sh). Runs in the VM as uid 1000 from
# $VMLANE_CGROUP/init.scope:
#   1. the sandbox/cgroup package tests ($VMLANE_BIN, the static test binary),
#      with WARDEN_VMLANE=1 so a test that would skip for lack of
#      controllers fails instead;
#   2. the end-to-end cases of the static warden binary
#      ($VMLANE_FILES/warden), testdata/vm/cases.sh.
# After each part no cgroup but init.scope may remain under $VMLANE_CGROUP.
#
# usage: guest.sh GO_TEST_REGEXP CASES_REGEXP   ("-" skips that part)
# Exit status: 0 when both parts passed, 1 otherwise.
echo "guest: $(id); kernel $(uname -r); $(cat /proc/self/cgroup)"
echo "guest: delegated $VMLANE_CGROUP, controllers: $(cat "$VMLANE_CGROUP/cgroup.controllers")"
cd /tmp || exit 1
rc=0
leftovers() {
	left=$(find "$VMLANE_CGROUP" -mindepth 1 -type d ! -name init.scope)
	if [ -n "$left" ]; then echo "guest: cgroups left behind after $1: $left"; rc=1; fi
}
if [ "$1" != - ]; then
	t0=$(cut -d' ' -f1 /proc/uptime)
	WARDEN_VMLANE=1 "$VMLANE_BIN" -test.v -test.count=1 -test.timeout=150s -test.run "$1" || rc=1
	echo "guest: package tests took $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }')s"
	leftovers "the package tests"
fi
if [ "$2" != - ]; then
	t0=$(cut -d' ' -f1 /proc/uptime)
	sh "$VMLANE_FILES/cases.sh" "$VMLANE_FILES/warden" "$2" || rc=1
	echo "guest: warden cases took $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }')s"
	leftovers "the warden cases"
fi
exit $rc
