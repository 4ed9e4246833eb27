#!/usr/bin/env bash
# test.sh: the whole test suite, as CI runs it (bash .ci/run) and as the
# README says. As root it installs what is missing, creates the unprivileged
# test user, and runs every test binary as that user (go test -exec); as a
# normal user it runs them as that user.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/local/go/bin/go ] && export PATH=/usr/local/go/bin:$PATH

if [ "$(id -u)" = 0 ]; then
	bash scripts/setup.sh --test-user
	# The test user must be able to read the tree and run the binaries:
	# work on a world-readable copy when the checkout is not.
	if ! setpriv --reuid="${WARDEN_TEST_USER:-wardentest}" --regid="${WARDEN_TEST_USER:-wardentest}" --init-groups \
		test -r "$PWD/go.mod" -a -x "$PWD"; then
		copy=$(mktemp -d /tmp/warden-ci.XXXXXX)
		chmod 755 "$copy"
		cp -a . "$copy/"
		chmod -R a+rX "$copy"
		cd "$copy"
		echo "test: running on a world-readable copy in $copy"
	fi
else
	bash scripts/setup.sh
fi

echo "== build"
make build
file bin/warden | grep -q 'statically linked' || { echo "bin/warden is not statically linked" >&2; exit 1; }
export WARDEN_BIN=$PWD/bin/warden
chmod a+rx bin bin/warden

echo "== vet"
go vet ./...
go vet -tags integration ./...

gotmp=$(mktemp -d /tmp/warden-gotest.XXXXXX)
chmod 755 "$gotmp"
trap 'rm -rf "$gotmp"' EXIT
export GOTMPDIR=$gotmp
# A warden binary with its symbol table, for the test that disassembles the
# code of the jail's init (sandbox/jailprog: TestChildCallsOnlyNosplit).
CGO_ENABLED=1 go build -tags "netgo osusergo" -o "$gotmp/warden-sym" ./cmd/warden
chmod a+rx "$gotmp/warden-sym"
export WARDEN_SYMBIN=$gotmp/warden-sym

echo "== unit, namespace and integration tests (as ${WARDEN_TEST_USER:-wardentest} when run as root)"
go test -count=1 -tags integration -exec "$PWD/scripts/as-user.sh" ./...

if [ "$(id -u)" = 0 ]; then
	# A few tests need root on the host (test network hosts in network
	# namespaces, a cgroup2 subtree); they skip as the user and run here.
	echo "== root-only host tests"
	WARDEN_AS_ROOT=1 go test -count=1 -exec "$PWD/scripts/as-user.sh" ./sandbox/netns/... ./sandbox/cgroup/...
	# containerd runs containers as root: warden-oci as its runc binary.
	WARDEN_AS_ROOT=1 go test -count=1 -tags integration -run '^TestContainerdWithWarden$' -exec "$PWD/scripts/as-user.sh" ./cmd/warden/
fi
# Real cgroup v2 limits need controllers this kind of host may not delegate:
# the VM lane boots a Debian kernel under QEMU and runs the cgroup package
# tests and the warden binary under real limits there (docs/limits.md).
if [ "$(id -u)" = 0 ] || command -v qemu-system-x86_64 >/dev/null; then
	echo "== VM lane (cgroup v2 limits under QEMU)"
	WARDEN_BIN=$PWD/bin/warden bash scripts/vm-test.sh
else
	echo "== VM lane skipped: qemu-system-x86_64 is not installed (run as root, or apt install qemu-system-x86)"
fi
echo "== all tests passed"
