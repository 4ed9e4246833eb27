package jailprog

import (
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox/mount"
)

// Overlay mounts: a tmpfs upper layer, the layers passed by fd.

// overlay appends the steps of an overlay's detached mount (pass 1, before
// the new root covers anything, like a bind's source): a new tmpfs with
// "upper" and "work" directories, sent to the parent (tagged
// NotifyOverlay+index) which reads the write-set from it after the run; then
// overlayfs with every layer passed by fd (FSCONFIG_SET_FD: Linux 6.13),
// userxattr (the kernel allows nothing else in a user namespace) and
// volatile (the upper is thrown away). It returns the overlay's register.
func (c *mountCompiler) overlay(o mount.Op, index int) int {
	b := c.b
	b.Context("mount", o.Target, o.String()+": upper layer tmpfs")
	opts := parseData(o.Data)
	opts["mode"] = "0755"
	tfs := c.newFS("tmpfs", opts, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	b.Call(unix.SYS_MKDIRAT, "mkdirat", R(tfs), b.Str("upper"), Oct(0o755))
	b.Call(unix.SYS_MKDIRAT, "mkdirat", R(tfs), b.Str("work"), Oct(0o700))
	upper, work := b.Reg(), b.Reg()
	b.Call(unix.SYS_OPENAT, "openat", R(tfs), b.Str("upper"), I(unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, "O_PATH|O_DIRECTORY|O_CLOEXEC"), Int(0)).Out = upper
	b.Call(unix.SYS_OPENAT, "openat", R(tfs), b.Str("work"), I(unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, "O_PATH|O_DIRECTORY|O_CLOEXEC"), Int(0)).Out = work
	b.Context("mount", o.Target, o.String()+": send the upper layer to warden")
	b.Notify(tfs, NotifyOverlay+index, "overlay "+strconv.Itoa(index)+" upper")
	ovl := b.Reg()
	b.Context("mount", o.Target, o.String()+": overlayfs")
	b.Call(unix.SYS_FSOPEN, "fsopen", b.Str("overlay"), I(unix.FSOPEN_CLOEXEC, "FSOPEN_CLOEXEC")).Out = ovl
	for _, l := range o.Lowers {
		b.Context("mount", o.Target, o.String()+": open lower "+l)
		r := b.Reg()
		b.Call(unix.SYS_OPENAT, "openat", atFDCWD, b.Str(l), I(unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, "O_PATH|O_DIRECTORY|O_CLOEXEC"), Int(0)).Out = r
		b.Context("mount", o.Target, o.String()+": lowerdir+ "+l)
		c.setFD(ovl, "lowerdir+", r)
		b.Close(r)
	}
	b.Context("mount", o.Target, o.String()+": overlayfs")
	c.setFD(ovl, "upperdir", upper)
	c.setFD(ovl, "workdir", work)
	for _, f := range []string{"userxattr", "volatile"} {
		b.Call(unix.SYS_FSCONFIG, "fsconfig", R(ovl), I(unix.FSCONFIG_SET_FLAG, "FSCONFIG_SET_FLAG"), b.Str(f), Null, Int(0))
	}
	b.Context("mount", o.Target, o.String()+": create overlayfs")
	b.Call(unix.SYS_FSCONFIG, "fsconfig", R(ovl), I(unix.FSCONFIG_CMD_CREATE, "FSCONFIG_CMD_CREATE"), Null, Null, Int(0))
	fd := b.Reg()
	b.Context("mount", o.Target, o.String()+": fsmount")
	b.Call(unix.SYS_FSMOUNT, "fsmount", R(ovl), I(unix.FSMOUNT_CLOEXEC, "FSMOUNT_CLOEXEC"), I(uintptr(attrs(o.ReadOnly, false)), attrNames(uint64(attrs(o.ReadOnly, false))))).Out = fd
	b.Close(ovl)
	b.Close(upper)
	b.Close(work)
	// Only now: closing the last fd of a detached mount dissolves it, and
	// overlayfs takes layers only from mounts that are attached somewhere.
	b.Close(tfs)
	return fd
}

func (c *mountCompiler) setFD(fs int, key string, r int) {
	c.b.Call(unix.SYS_FSCONFIG, "fsconfig", R(fs), I(unix.FSCONFIG_SET_FD, "FSCONFIG_SET_FD"), c.b.Str(key), Null, R(r))
}
