#!/bin/sh
# /init of the VM lane's initramfs (busybox sh, PID 1); see run-in-vm.sh.
#
# Pass 1 copies the initramfs into a tmpfs and switch_roots into it, because
# pivot_root(2) refuses the initramfs rootfs and the sandbox tests need it.
# Pass 2 mounts the usual file systems and cgroup2 (cgroup_no_v1=all on the
# command line leaves every controller to it), delegates a subtree to uid 1000
# as systemd's user@1000.service with Delegate=yes would, runs the test script
# there as that user, and reports its exit status on the console.
#
# ttyS0 is the console (kernel messages, our notes, the exit marker);
# ttyS1 carries the test's output.
export PATH=/vmlane/bin:/bin:/sbin:/usr/bin:/usr/sbin
note() { echo "vmlane-init: $*" > /dev/console; }

if [ "${VMLANE_PASS:-1}" = 1 ]; then
	# The archive has no /dev/console (making one needs root): take stdio
	# from devtmpfs.
	mount -t devtmpfs devtmpfs /dev
	exec < /dev/console > /dev/console 2>&1
	mkdir /newroot
	mount -t tmpfs -o mode=0755 tmpfs /newroot
	for entry in /*; do
		case $entry in /newroot | /proc | /sys | /dev) ;; *) cp -a "$entry" /newroot/ ;; esac
	done
	mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/tmp /newroot/run
	mount --move /dev /newroot/dev
	export VMLANE_PASS=2
	exec switch_root /newroot /init
	note "switch_root failed"
	exit 1
fi

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
ip link set lo up
hostname vmlane
chown -R 0:0 /bin /etc /vmlane
chown -R 1000:1000 /home/sbx
chmod 0755 /vmlane /vmlane/bin
[ -e /proc/sys/kernel/unprivileged_userns_clone ] && echo 1 > /proc/sys/kernel/unprivileged_userns_clone
note "up after $(cut -d' ' -f1 /proc/uptime)s, kernel $(uname -r)"

# Enable every controller on the way down to the user's service cgroup.
cg=/sys/fs/cgroup
all=""
for c in $(cat $cg/cgroup.controllers); do all="$all +$c"; done
svc=$cg/user.slice/user-1000.slice/user@1000.service
for d in $cg $cg/user.slice $cg/user.slice/user-1000.slice; do
	mkdir -p "$d"
	echo "$all" > "$d/cgroup.subtree_control" || note "could not enable [$all] in $d"
done
mkdir -p "$svc/init.scope"
# Delegation as Documentation/admin-guide/cgroup-v2.rst describes it: the
# directory and its cgroup.procs, cgroup.threads and cgroup.subtree_control,
# never the resource files of the delegated cgroup itself.
for d in "$svc" "$svc/init.scope"; do
	chown 1000:1000 "$d" "$d/cgroup.procs" "$d/cgroup.threads" "$d/cgroup.subtree_control"
done
echo $(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) * 1024 * 85 / 100)) > "$svc/memory.max"
echo 8192 > "$svc/pids.max"
note "cgroup2 controllers: $(cat $cg/cgroup.controllers); delegated to uid 1000: ${svc#$cg}"

{
	echo "export PATH=/vmlane/bin:/bin:/sbin:/usr/bin:/usr/sbin"
	echo "export HOME=/home/sbx USER=sbx LOGNAME=sbx SHELL=/bin/sh TMPDIR=/tmp"
	echo "export VMLANE_CGROUP=$svc VMLANE_BIN=$(cat /vmlane/binpath) VMLANE_FILES=/vmlane/files"
	cat /vmlane/extra-env
} > /vmlane/env
chmod 0644 /vmlane/env

stty -F /dev/ttyS1 raw -echo 2>/dev/null
note "running the test as uid 1000 at $(cut -d' ' -f1 /proc/uptime)s"
# Join init.scope first, then become the user (su does not exec away, so it
# must not be left in the delegated cgroup itself).
sh -c 'echo $$ > "$1/init.scope/cgroup.procs" && exec su -s /bin/sh sbx -c ". /vmlane/env; cd \$HOME; eval \"set -- \$(cat /vmlane/args)\"; exec /bin/sh /vmlane/test.sh \"\$@\""' \
	init "$svc" < /dev/null > /dev/ttyS1 2>&1
rc=$?
note "test finished at $(cut -d' ' -f1 /proc/uptime)s"
[ "$rc" = 0 ] || { note "last kernel messages:"; dmesg | tail -n 40 > /dev/console; }
echo "VMLANE_EXIT=$rc" > /dev/console
sync
poweroff -f
