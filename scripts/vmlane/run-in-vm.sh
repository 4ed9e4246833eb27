#!/usr/bin/env bash
# scripts/vmlane/run-in-vm.sh: run a test script as an unprivileged user
# (uid 1000) with a delegated cgroup2 subtree holding every controller, inside a
# throwaway QEMU VM (Debian's cloud kernel + a busybox initramfs, software
# emulation, a few seconds to boot). This is warden's lane for what a
# development host may lack: real memory/pids/cpu/io controllers.
#
# usage: run-in-vm.sh [-t SECONDS] [-e NAME=VALUE]... [-f PATH]... BINARY SCRIPT [ARGS...]
#
#   BINARY  a static executable, /vmlane/bin/<name> in the guest ($VMLANE_BIN, on PATH)
#   SCRIPT  a POSIX sh script, run by busybox sh as uid 1000 (sbx) with ARGS, in
#           $HOME=/home/sbx, from cgroup $VMLANE_CGROUP/init.scope, where
#           $VMLANE_CGROUP=/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service
#           is delegated the way systemd's Delegate=yes does it (the directory,
#           cgroup.procs, cgroup.threads and cgroup.subtree_control belong to
#           uid 1000; its own limits stay root's: memory.max 85% of RAM, pids.max 8192).
#   -e N=V  an environment variable for SCRIPT
#   -f PATH a file or directory copied to /vmlane/files ($VMLANE_FILES)
#   -t SEC  wall-clock limit for the VM (default 600)
#
# Exit status: the script's; 124 when the VM ran out of time; 125 when the VM
# ended without reporting one. The script's stdout and stderr stream to ours.
#
# Environment: VMLANE_CACHE (default ~/.cache/warden-vmlane) keeps the unpacked
# kernel and busybox between runs; VMLANE_KERNEL_PKG (default
# linux-image-cloud-amd64); VMLANE_MEM (1G), VMLANE_SMP (2); VMLANE_VERBOSE=1
# prints the guest console; VMLANE_KEEP=1 keeps the work directory.
#
# Needs qemu-system-x86_64 (installed with apt-get when missing and run as
# root) and apt-get/dpkg-deb for the first download. No KVM, no root
# otherwise, and nothing on the host's own cgroups.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 2; }
limit=600
envs=() files=()
while getopts "t:e:f:h" o; do
	case $o in
	t) limit=$OPTARG ;;
	e) envs+=("$OPTARG") ;;
	f) files+=("$OPTARG") ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 2 ] || usage
bin=$1 script=$2
shift 2
[ -f "$bin" ] && [ -x "$bin" ] || { echo "vmlane: $bin: not an executable file" >&2; exit 2; }
[ -f "$script" ] || { echo "vmlane: $script: no such file" >&2; exit 2; }

say() { echo "vmlane: $*" >&2; }
t_start=$(date +%s.%N)
cache=${VMLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/warden-vmlane}
mkdir -p "$cache"

# One download at a time when several runs start together.
exec 8>"$cache/.lock"
flock 8
if ! command -v qemu-system-x86_64 >/dev/null; then
	[ "$(id -u)" = 0 ] || { say "qemu-system-x86_64 is missing: apt-get install qemu-system-x86"; exit 125; }
	say "installing qemu-system-x86"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends qemu-system-x86 >&2 ||
		{ apt-get update -q >&2 && apt-get install -y -q --no-install-recommends qemu-system-x86 >&2; }
fi

# unpack_pkg PKG DEST [MEMBER]: download a Debian package once and unpack it
# (only MEMBER of it, when given) into DEST. A kernel metapackage is resolved
# to the linux-image-<version> package it depends on.
unpack_pkg() {
	local pkg=$1 dest=$2 member=${3:-} real deb dl
	[ -e "$dest/.ok" ] && return 0
	if ! apt-cache show "$pkg" >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then apt-get update -q >&2; fi
	real=$(apt-cache depends "$pkg" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	real=${real:-$pkg}
	dl=$(mktemp -d "$cache/dl.XXXXXX")
	say "downloading $real"
	if ! (cd "$dl" && apt-get download -q -o APT::Sandbox::User=root "$real" >&2); then
		[ "$(id -u)" = 0 ] && apt-get update -q >&2
		(cd "$dl" && apt-get download -q -o APT::Sandbox::User=root "$real" >&2)
	fi
	deb=$(ls "$dl"/*.deb)
	rm -rf "$dest" && mkdir -p "$dest"
	if [ -n "$member" ]; then
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dest" "$member"
	else
		dpkg-deb -x "$deb" "$dest"
	fi
	echo "$real $(dpkg-deb -f "$deb" Version)" > "$dest/.ok"
	rm -rf "$dl"
}
kpkg=${VMLANE_KERNEL_PKG:-linux-image-cloud-amd64}
unpack_pkg "$kpkg" "$cache/$kpkg" ./boot
unpack_pkg busybox-static "$cache/busybox-static"
exec 8>&-
kernel=$(ls "$cache/$kpkg"/boot/vmlinuz-* | head -n1)
busybox=$cache/busybox-static/bin/busybox

# --- the initramfs -----------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/warden-vmlane.XXXXXX")
qemu_pid= tail_pid=
finish() {
	[ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
	[ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null
	if [ -n "${VMLANE_KEEP:-}" ]; then say "work directory kept: $work"; else rm -rf "$work"; fi
}
trap finish EXIT
trap 'exit 130' INT TERM

# The busybox part (the binary and ~400 applet links) is the same every run:
# it is archived once in the cache, and the kernel unpacks the per-run archive
# appended to it on top (concatenated newc archives are one initramfs).
base=$cache/busybox-base.cpio
if [ ! -s "$base" ]; then
	b=$work/base
	mkdir -p "$b/bin"
	cp "$busybox" "$b/bin/busybox"
	for applet in $("$busybox" --list); do
		[ "$applet" = busybox ] || ln -s busybox "$b/bin/$applet"
	done
	(cd "$b" && find . | "$busybox" cpio -o -H newc 2>/dev/null) > "$base.tmp" && mv "$base.tmp" "$base"
fi
root=$work/root
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,home/sbx,vmlane/bin,vmlane/files}
install -m 0755 "$here/init.sh" "$root/init"
cp "$bin" "$root/vmlane/bin/"
echo "/vmlane/bin/$(basename "$bin")" > "$root/vmlane/binpath"
cp "$script" "$root/vmlane/test.sh"
for f in ${files[@]+"${files[@]}"}; do cp -a "$f" "$root/vmlane/files/"; done
# quote for the guest's sh: 'x' with every ' written as '\''
q() { printf "'%s'" "$(printf %s "$1" | sed "s/'/'\\\\''/g")"; }
: > "$root/vmlane/extra-env"
for kv in ${envs[@]+"${envs[@]}"}; do echo "export ${kv%%=*}=$(q "${kv#*=}")" >> "$root/vmlane/extra-env"; done
: > "$root/vmlane/args"
for a in "$@"; do printf '%s ' "$(q "$a")" >> "$root/vmlane/args"; done
printf 'root:x:0:0:root:/root:/bin/sh\nsbx:x:1000:1000:sbx:/home/sbx:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nsbx:x:1000:\nnogroup:x:65534:\n' > "$root/etc/group"
echo "sbx:100000:65536" > "$root/etc/subuid"
echo "sbx:100000:65536" > "$root/etc/subgid"
{ cat "$base"; (cd "$root" && find . | "$busybox" cpio -o -H newc 2>/dev/null); } > "$work/initramfs.cpio"

# --- boot ----------------------------------------------------------------------
: > "$work/console.log"
: > "$work/output.log"
t_boot=$(date +%s.%N)
timeout -s TERM "$limit" qemu-system-x86_64 \
	-M pc -accel tcg -cpu max -smp "${VMLANE_SMP:-2}" -m "${VMLANE_MEM:-1G}" \
	-nodefaults -no-user-config -display none -no-reboot \
	-serial "file:$work/console.log" -serial "file:$work/output.log" \
	-kernel "$kernel" -initrd "$work/initramfs.cpio" \
	-append "console=ttyS0 quiet loglevel=3 panic=-1 oops=panic mitigations=off cgroup_no_v1=all" \
	< /dev/null > "$work/qemu.log" 2>&1 &
qemu_pid=$!
tail -n +1 -s 0.2 -f --pid="$qemu_pid" "$work/output.log" &
tail_pid=$!
qemu_rc=0
wait "$qemu_pid" || qemu_rc=$?
qemu_pid=
t_end=$(date +%s.%N)
wait "$tail_pid" 2>/dev/null || true
tail_pid=
rc=$(tr -d '\r' < "$work/console.log" | sed -n 's/^VMLANE_EXIT=\([0-9]*\)$/\1/p' | tail -n1)
if [ -n "${VMLANE_VERBOSE:-}" ] || [ -z "$rc" ]; then
	say "---- guest console (last 60 lines) ----"
	tr -d '\r' < "$work/console.log" | tail -n 60 >&2
	cat "$work/qemu.log" >&2
fi
if [ -z "$rc" ]; then
	if [ "$qemu_rc" = 124 ]; then say "the VM ran out of time (${limit}s)"; rc=124; else say "the VM ended without an exit code (qemu: $qemu_rc)"; rc=125; fi
fi
say "$(awk -v a="$t_start" -v b="$t_boot" -v c="$t_end" -v rc="$rc" -v k="$(basename "$kernel")" \
	'BEGIN { printf "exit %s; prepare %.1fs, VM %.1fs, total %.1fs; kernel %s", rc, b - a, c - b, c - a, k }')"
exit "$rc"
