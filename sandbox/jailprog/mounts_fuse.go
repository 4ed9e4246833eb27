package jailprog

import (
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox/mount"
)

// Traced directories: a FUSE mount made by init, served by warden.

// TraceFD is the descriptor number the first traced directory's /dev/fuse
// is moved to (the next ones follow): the FUSE mount names its device by
// number ("fd=N", which Linux takes only as a string, not by
// FSCONFIG_SET_FD), so the number must be known when the program is
// compiled. It lies far above what init holds (a few dozen descriptors
// at most) and below the usual soft RLIMIT_NOFILE of 1024.
const TraceFD = 900

// MaxTraces is how many traced directories a program can hold.
const MaxTraces = 64

// trace appends the steps of a traced directory's detached FUSE mount (pass
// 1, like a bind's source): open /dev/fuse, move it to TraceFD+index,
// create the mount (nosuid, nodev, read-only as the op says) with
// default_permissions (the kernel checks modes as on a bind) and allow_other
// (every process of the jail's user namespace, and nothing outside it); only
// then send the device to warden (tagged NotifyTrace+index): the kernel
// connects it to a mount at FSCONFIG_CMD_CREATE, and a read before that
// fails. Init keeps no copy: only warden can answer the mount. The kernel
// queues the mount's INIT until warden does; init's later steps that look
// inside the mount wait for warden's answer. It returns the mount's register.
func (c *mountCompiler) trace(o mount.Op, index int) int {
	b := c.b
	fixed := TraceFD + index
	b.Context("mount", o.Target, o.String()+": open /dev/fuse")
	dev := b.Reg()
	b.Call(unix.SYS_OPENAT, "openat", atFDCWD, b.Str("/dev/fuse"), I(unix.O_RDWR|unix.O_CLOEXEC, "O_RDWR|O_CLOEXEC"), Int(0)).Out = dev
	b.Call(unix.SYS_DUP3, "dup3", R(dev), Int(fixed), I(unix.O_CLOEXEC, "O_CLOEXEC"))
	opts := parseData(o.Data)
	opts["fd"] = strconv.Itoa(fixed)
	opts["rootmode"] = "40000"
	opts["default_permissions"] = ""
	opts["allow_other"] = ""
	opts["max_read"] = "1048576"
	b.Context("mount", o.Target, o.String()+": FUSE mount")
	fd := c.newFS("fuse", opts, attrs(o.ReadOnly, false))
	b.Call(unix.SYS_CLOSE, "close", Int(fixed))
	b.Context("mount", o.Target, o.String()+": send /dev/fuse to warden")
	b.Notify(dev, NotifyTrace+index, "trace "+strconv.Itoa(index)+" /dev/fuse")
	b.Close(dev)
	return fd
}
