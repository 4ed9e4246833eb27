#!/usr/bin/env bash
# Run the OCI runtime validation suite of opencontainers/runtime-tools v0.9.0
# against an OCI runtime command line (runc-compatible: create/start/state/
# kill/delete/list).
#
#   scripts/oci-validate.sh RUNTIME [TEST...]
#   scripts/oci-validate.sh --list
#   scripts/oci-validate.sh --markdown RESULTS.jsonl [LABEL [EXTRA-COLUMN]]
#
# RUNTIME is a path or a command name; it is run with no extra arguments
# (runtime-tools looks it up with exec.LookPath), by its absolute path with
# symlinks kept (argv[0] stays, for multi-call binaries). To pass options
# such as --root, give a wrapper script. TESTs are validation program names
# (default, create, linux_ns_path, ...); none means all of them.
#
# Prints one line per test (status, TAP pass/fail/skip counts, time, reason,
# and what the harness had to clean up after it) and a summary. Exit status:
# 0 when the suite ran, whatever the results; 2 when the harness could not
# run (not root, no Go, build failure, bad arguments, cleanup failure).
#
# Environment:
#   OCI_VALIDATE_CACHE    where the programs are built (default
#                         ${XDG_CACHE_HOME:-$HOME/.cache}/warden-oci-validate)
#   OCI_VALIDATE_OUT      output directory (default: a new /tmp/oci-validate.XXXXXX);
#                         holds logs/NAME.tap, logs/NAME.stderr, results.jsonl
#   OCI_VALIDATE_TIMEOUT  seconds per test (default 60)
#   OCI_VALIDATE_BUSYBOX  static busybox for the bundles' rootfs (default /bin/busybox)
#   OCI_VALIDATE_ROOTFS   use this rootfs tarball instead of building one from busybox
#                         (e.g. runtime-tools' own rootfs-amd64.tar.gz in the module cache)
#
# Each test runs in a private mount namespace (unshare -m --propagation
# private) under a child-subreaper helper; afterwards the harness deletes
# (RUNTIME delete --force) the containers whose bundle is in the test's
# TMPDIR, kills the processes it left, detaches leaked mounts and removes
# its bundles. See docs/oci-validation.md.
set -euo pipefail

die() { echo "oci-validate: $*" >&2; exit 2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mod=$here/oci-validate
[[ -f $mod/go.mod ]] || die "missing $mod/go.mod"

[[ $# -ge 1 ]] || die "usage: $0 RUNTIME [TEST...]   |   $0 --list"
[[ $1 != -h && $1 != --help ]] || { sed -n '2,/^set -e/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0; }

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	export PATH=/usr/local/go/bin:$PATH
fi
command -v go >/dev/null || die "go is needed to build the validation programs"
export GOWORK=off CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=readonly -buildvcs=false"

if [[ $1 != --list && $1 != --markdown && $(id -u) != 0 ]]; then
	die "must run as root: the suite writes root-owned bundles and generates root-only configs (runtime-tools has no rootless mode)"
fi

cache=${OCI_VALIDATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/warden-oci-validate}
goenv=$(go env GOVERSION GOOS GOARCH)
# The suite (runtime-tools' programs) depends on go.mod/go.sum and Go only;
# the helper also on its own source.
suite=$cache/suite-$( { cat "$mod"/go.mod "$mod"/go.sum; echo "$goenv"; } | sha256sum | cut -c1-16)
helper_dir=$cache/helper-$( { cat "$mod"/go.mod "$mod"/go.sum "$mod"/*.go; echo "$goenv"; } | sha256sum | cut -c1-16)
helper=$helper_dir/oci-validate

# build DIR COMMANDS: run COMMANDS (in $mod, output into $partial) once.
build() {
	local dir=$1 what=$2 partial t0=$SECONDS
	shift 2
	[[ -f $dir/.complete ]] && return 0
	echo "oci-validate: building $what into $dir" >&2
	mkdir -p "$cache"
	partial=$(mktemp -d "$cache/partial.XXXXXX")
	if ! (cd "$mod" && "$@" "$partial"); then
		rm -rf "$partial"
		die "building $what failed"
	fi
	touch "$partial/.complete"
	if [[ -f $dir/.complete ]]; then # another run finished it meanwhile
		rm -rf "$partial"
	else
		rm -rf "$dir"
		mv -T "$partial" "$dir"
	fi
	echo "oci-validate: built $what in $((SECONDS - t0)) s" >&2
}
build_suite() {
	local out=$1 pkgs
	go build -trimpath -o "$out/runtimetest" github.com/opencontainers/runtime-tools/cmd/runtimetest || return 1
	pkgs=$(go list github.com/opencontainers/runtime-tools/validation/... | grep -v '/validation/util$') || return 1
	mkdir "$out/validation"
	# shellcheck disable=SC2086
	go build -trimpath -o "$out/validation/" $pkgs || return 1
	for p in $pkgs; do echo "${p##*/}"; done >"$out/tests.txt"
}
build_helper() { go build -trimpath -o "$1/oci-validate" .; }
build "$suite" "runtime-tools v0.9.0 runtimetest and validation programs" build_suite
build "$helper_dir" "the oci-validate helper" build_helper
mapfile -t all_tests <"$suite/tests.txt"

if [[ $1 == --list ]]; then
	printf '%s\n' "${all_tests[@]}"
	exit 0
fi
if [[ $1 == --markdown ]]; then
	[[ $# -ge 2 ]] || die "usage: $0 --markdown RESULTS.jsonl [LABEL [EXTRA-COLUMN]]"
	exec "$helper" summary --markdown --results "$2" --label "${3:-result}" --extra-column "${4:-}"
fi

# ---- arguments ------------------------------------------------------------
rt_arg=$1
shift
if [[ $rt_arg == */* ]]; then
	rt=$(realpath -s -e -- "$rt_arg" 2>/dev/null) || die "no such runtime: $rt_arg"
else
	rt=$(command -v -- "$rt_arg") || die "runtime not found in PATH: $rt_arg"
fi
[[ -x $rt && ! -d $rt ]] || die "not an executable: $rt"

tests=("$@")
if [[ ${#tests[@]} -eq 0 ]]; then
	tests=("${all_tests[@]}")
fi
for t in "${tests[@]}"; do
	printf '%s\n' "${all_tests[@]}" | grep -qxF -- "$t" || die "unknown test: $t (see $0 --list)"
done

timeout=${OCI_VALIDATE_TIMEOUT:-60}
[[ $timeout =~ ^[0-9]+$ && $timeout -gt 0 ]] || die "OCI_VALIDATE_TIMEOUT must be a number of seconds"
for c in unshare tar sh; do
	command -v "$c" >/dev/null || die "$c is needed (the harness or the tests run it)"
done

# ---- output directory and the bundles' root file system -------------------
if [[ -n ${OCI_VALIDATE_OUT:-} ]]; then
	out=$OCI_VALIDATE_OUT
	mkdir -p "$out"
	[[ -z $(ls -A "$out") ]] || die "OCI_VALIDATE_OUT=$out is not empty"
else
	out=$(mktemp -d /tmp/oci-validate.XXXXXX)
fi
out=$(realpath "$out")
chmod 0755 "$out"
# Tests with a user namespace (linux_uid_mappings, linux_ns_nopath) run the
# container as a mapped uid that must be able to reach its bundle, which
# lives under $out: every directory above it must be searchable by others.
d=$out
while [[ $d != / ]]; do
	[[ $(( 0$(stat -c %a "$d") & 01 )) -ne 0 ]] ||
		die "$d is not searchable by others (mode $(stat -c %a "$d")); the user-namespace tests would fail because of the harness; choose another OCI_VALIDATE_OUT"
	d=$(dirname "$d")
done
run=$out/run

mkdir -p "$run" "$out/logs" "$out/tmp"
goarch=$("$helper" goarch)
if [[ -n ${OCI_VALIDATE_ROOTFS:-} ]]; then
	[[ -f $OCI_VALIDATE_ROOTFS ]] || die "OCI_VALIDATE_ROOTFS=$OCI_VALIDATE_ROOTFS: no such file"
	cp "$OCI_VALIDATE_ROOTFS" "$run/rootfs-$goarch.tar.gz"
	rootfs_desc="$OCI_VALIDATE_ROOTFS"
else
	busybox=${OCI_VALIDATE_BUSYBOX:-/bin/busybox}
	[[ -x $busybox ]] || die "no busybox at $busybox (Debian: busybox-static)"
	"$helper" static "$busybox" ||
		die "$busybox is not statically linked; the hooks run it on the host and the container has no libc"
	# The layout of runtime-tools' own rootfs-amd64.tar.gz: busybox and one
	# symlink per applet in /bin, empty /dev /proc /sys, /etc/passwd and group.
	rootfs=$out/rootfs
	mkdir -p "$rootfs"/{bin,dev,proc,sys,etc}
	cp "$busybox" "$rootfs/bin/busybox"
	chmod 0755 "$rootfs/bin/busybox"
	applets=$("$busybox" --list | grep -vx busybox)
	for a in $applets; do
		ln -s busybox "$rootfs/bin/$a"
	done
	for a in sh true false sleep ls cat echo touch mkdir id; do
		[[ -e $rootfs/bin/$a ]] || die "$busybox has no '$a' applet, which the tests run"
	done
	cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
	cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
bin:x:2:
tty:x:5:
wheel:x:10:root
nogroup:x:65534:
EOF
	tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -C "$rootfs" -czf "$run/rootfs-$goarch.tar.gz" .
	rm -rf "$rootfs"
	rootfs_desc="$busybox and $(wc -w <<<"$applets") applet symlinks"
fi
cp "$suite/runtimetest" "$run/runtimetest"

# ---- run ------------------------------------------------------------------
echo "oci-validate: runtime $rt ($(timeout 10 "$rt" --version 2>/dev/null | head -1 || true))"
echo "oci-validate: rootfs: $rootfs_desc"
echo "oci-validate: ${#tests[@]} tests, ${timeout} s each at most; logs in $out/logs"
t0=$SECONDS
harness_failed=()
for t in "${tests[@]}"; do
	if ! unshare -m --propagation private -- "$helper" run \
		--name "$t" --bin "$suite/validation/$t" --runtime "$rt" \
		--cwd "$run" --tmp "$out/tmp/$t" --logs "$out/logs" \
		--results "$out/results.jsonl" --timeout "${timeout}s"; then
		harness_failed+=("$t")
	fi
	# Nothing may reach the host's mount namespace; if it did, stop here
	# rather than let later tests (or rm -rf) run on top of it.
	if grep -qF " $out/" /proc/self/mountinfo; then
		die "mounts under $out appeared in the host mount namespace after $t; see findmnt -R $out"
	fi
done
elapsed=$((SECONDS - t0))

echo
echo "== summary ($rt)"
"$helper" summary --results "$out/results.jsonl"
echo "wall time: ${elapsed} s; results: $out/results.jsonl"
rmdir "$out/tmp" 2>/dev/null || echo "oci-validate: some bundles could not be removed; see $out/tmp" >&2
if [[ ${#harness_failed[@]} -gt 0 ]]; then
	die "the harness failed on: ${harness_failed[*]}"
fi
exit 0
