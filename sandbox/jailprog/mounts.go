package jailprog

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox/mount"
)

// Dynamic is a mount.File op whose content arrives with the parent's "go"
// message (the network helper's resolv.conf): ops whose Source equals
// Source write buffer Buf, of the length in register Len.
type Dynamic struct {
	Source   string
	Buf, Len int
}

// Mounts appends the steps that build the jail's root from ops on a tmpfs
// attached at scratch and pivot into it, decided ahead of time:
//
//   - every mount is made a slave first, so nothing propagates to the host;
//   - every Bind source is opened (open_tree) and made read-only/nosuid
//     before the new root covers anything, so a source is the host's;
//   - targets are created in the new root as needed. Where the path lies in
//     directories warden itself made on its own tmpfs, the compiler knows
//     they exist and hold no symlink, and addresses them relative to the
//     root's fd. Below a mount of host files (a bind) nothing is known:
//     there every component is created and opened one at a time with
//     openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS), so
//     a symlink planted by a hostile payload in a writable directory can
//     never redirect a mount;
//   - Hide and Remount targets are never created: a new mount point would
//     appear on the host through a read-write bind;
//   - an Optional op whose source or target does not exist is skipped.
//
// beforePivot, if not nil, appends steps that run once every mount is
// made, in the new root as the current directory, before pivot_root: the
// host's file system is still there, with the new root attached at
// scratch (an OCI container's createContainer hooks).
func (b *Builder) Mounts(ops []mount.Op, scratch string, dyn Dynamic, beforePivot func()) {
	c := &mountCompiler{b: b, tree: &node{kind: fresh}, dyn: dyn, beforePivot: beforePivot}
	c.run(ops, scratch)
}

type nodeKind uint8

const (
	fresh   nodeKind = iota // a directory warden made, or the root of a new empty tmpfs
	foreign                 // a mount of something warden did not make: contents unknown
	symlink
	file
)

// node is the compiler's model of the new root, true until the payload runs.
type node struct {
	kind nodeKind
	kids map[string]*node
}

type mountCompiler struct {
	b    *Builder
	tree *node
	root int // register of the new root's mount fd
	dyn  Dynamic
	// writableRoot: the root is an overlay, which stays writable (its
	// writes go to the upper layer).
	writableRoot bool
	beforePivot  func()
}

const resolveAll = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

func (c *mountCompiler) run(ops []mount.Op, scratch string) {
	b := c.b
	b.Context("mount", "/", "make / rslave")
	b.Call(unix.SYS_MOUNT, "mount", b.Str(""), b.Str("/"), Null, I(unix.MS_SLAVE|unix.MS_REC, "MS_SLAVE|MS_REC"), Null)
	// Pass 1: every source, before the new root covers anything.
	srcs := make([]int, len(ops))
	overlays, traces := 0, 0
	for i, o := range ops {
		srcs[i] = -1
		if o.Kind == mount.Overlay {
			srcs[i] = c.overlay(o, overlays)
			overlays++
			continue
		}
		if o.Kind == mount.Trace {
			srcs[i] = c.trace(o, traces)
			traces++
			continue
		}
		if o.Kind != mount.Bind && o.Kind != mount.DevBind && !(o.Kind == mount.Hide && o.File) {
			continue
		}
		src := o.Source
		if o.Kind == mount.Hide {
			src = "/dev/null"
		}
		r := b.Reg()
		srcs[i] = r
		b.Context("mount", o.Target, o.String()+": open source "+src)
		flags, show := uintptr(unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC), "OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC"
		if o.Kind == mount.Bind {
			flags, show = flags|unix.AT_RECURSIVE, show+"|AT_RECURSIVE"
		}
		s := b.Call(unix.SYS_OPEN_TREE, "open_tree", atFDCWD, b.Str(src), I(flags, show))
		s.Out = r
		if o.Optional {
			s.OkErrno = syscall.ENOENT // r stays empty: the op's steps are skipped
		}
		var set uint64
		if o.ReadOnly || o.Kind == mount.Hide {
			set |= unix.MOUNT_ATTR_RDONLY
		}
		if o.Kind == mount.Bind {
			set |= unix.MOUNT_ATTR_NOSUID
		}
		if set != 0 {
			// mount_setattr only sets the bits named, so it never clears
			// flags the kernel locked on mounts from a more privileged
			// namespace, as a MS_REMOUNT|MS_RDONLY would have to.
			b.Guarded(r)
			b.Context("mount", o.Target, o.String()+": mount_setattr")
			c.setattr(R(r), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, "AT_EMPTY_PATH|AT_RECURSIVE", set)
			b.Guarded(-1)
		}
	}
	// The new root: a tmpfs attached at scratch, or an overlay at "/" (a
	// root file system or an image), whose contents the compiler does not
	// know.
	first := 0
	if len(ops) > 0 && (ops[0].Kind == mount.Overlay || ops[0].Kind == mount.Bind) && path.Clean(ops[0].Target) == "/" {
		// An OCI bundle's root.path is a bind at "/": read-only only when
		// root.readonly says so.
		c.root, c.tree.kind, c.writableRoot = srcs[0], foreign, !ops[0].ReadOnly
		first = 1
	} else {
		b.Context("mount", "/", "create root")
		c.root = c.newFS("tmpfs", map[string]string{"mode": "0755"}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	}
	b.Context("mount", scratch, "attach root at "+scratch)
	b.Call(unix.SYS_MOVE_MOUNT, "move_mount", R(c.root), b.Str(""), atFDCWD, b.Str(scratch),
		I(unix.MOVE_MOUNT_F_EMPTY_PATH, "MOVE_MOUNT_F_EMPTY_PATH"))
	// Pass 2: in order.
	for i, o := range ops[first:] {
		c.op(o, srcs[first+i])
	}
	c.pivot()
}

// op appends the steps of one mount op.
func (c *mountCompiler) op(o mount.Op, src int) {
	b := c.b
	b.Context("mount", o.Target, o.String())
	if src >= 0 {
		b.Guarded(src)
	}
	if o.Optional {
		b.BeginOptional()
	}
	rel := strings.TrimPrefix(path.Clean(o.Target), "/")
	t := target{reg: -1}
	switch o.Kind {
	case mount.Remount, mount.Hide:
		t = c.existing(rel)
	case mount.Symlink:
		c.symlink(o, rel)
	default:
		t = c.create(rel, o.File, o.Kind == mount.Mkdir, o.Data)
	}
	switch o.Kind {
	case mount.Bind, mount.DevBind, mount.Overlay, mount.Trace:
		c.moveTo(src, t)
	case mount.Hide:
		if o.File {
			c.moveTo(src, t)
		} else {
			fd := c.newFS("tmpfs", map[string]string{"mode": "0000", "size": "4k"}, attrs(true, true))
			c.moveTo(fd, t)
			b.Close(fd)
		}
	case mount.Remount:
		// A read-only bind of the target onto itself: mount_setattr on the
		// target alone would change the whole mount it belongs to (all of
		// /proc, say), not just this subtree.
		fd := b.Reg()
		dir, p, flags, show := t.at(b)
		s := b.Call(unix.SYS_OPEN_TREE, "open_tree", dir, p,
			I(flags|unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE, show+"OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC|AT_RECURSIVE"))
		s.Out = fd
		c.setattr(R(fd), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, "AT_EMPTY_PATH|AT_RECURSIVE", unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID)
		c.moveTo(fd, t)
		b.Close(fd)
	case mount.File:
		fd := c.contentFile(o)
		c.moveTo(fd, t)
		b.Close(fd)
	case mount.Tmpfs, mount.Proc, mount.Sysfs, mount.Devpts, mount.Mqueue:
		fstype := map[mount.Kind]string{mount.Tmpfs: "tmpfs", mount.Proc: "proc", mount.Sysfs: "sysfs", mount.Devpts: "devpts", mount.Mqueue: "mqueue"}[o.Kind]
		opts := parseData(o.Data)
		if o.Source != "" {
			// The name mountinfo shows as the source (an OCI config's).
			opts["source"] = o.Source
		}
		a := attrs(o.ReadOnly || o.Kind == mount.Sysfs, o.Kind != mount.Tmpfs)
		if o.Kind == mount.Devpts {
			opts["newinstance"] = ""
			a = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC
		}
		fd := c.newFS(fstype, opts, a)
		c.moveTo(fd, t)
		b.Close(fd)
	}
	if o.Optional {
		b.EndOptional()
	}
	// The target's fd, and the source's, are closed even when the op was
	// skipped (a close of an empty register does nothing).
	if t.reg >= 0 {
		b.Close(t.reg)
	}
	if src >= 0 {
		b.Guarded(-1)
		b.Close(src)
	}
	c.mounted(o, rel)
}

// mounted updates the model after op o.
func (c *mountCompiler) mounted(o mount.Op, rel string) {
	switch o.Kind {
	case mount.Symlink, mount.Mkdir:
		return // recorded when created
	}
	n := c.lookup(rel)
	if n == nil {
		return // below a foreign mount: not modelled
	}
	n.kids = nil
	n.kind = foreign
	if o.Kind == mount.Tmpfs {
		n.kind = fresh
	}
}

// lookup returns the model's node at rel, nil if it is not modelled
// (missing, or below a foreign mount or a symlink).
func (c *mountCompiler) lookup(rel string) *node {
	n := c.tree
	for _, comp := range splitRel(rel) {
		if n.kind != fresh {
			return nil
		}
		n = n.kids[comp]
		if n == nil {
			return nil
		}
	}
	return n
}

func splitRel(rel string) []string {
	if rel == "" || rel == "." {
		return nil
	}
	return strings.Split(rel, "/")
}

// target is where a mount goes: a path relative to the root fd when the
// compiler knows the path (no symlinks, all warden's own), else an fd
// opened with openat2.
type target struct {
	rel string
	reg int // -1: use rel
	dir int // the root's register
}

func (t target) at(b *Builder) (dir, p Arg, flags uintptr, show string) {
	if t.reg >= 0 {
		return R(t.reg), b.Str(""), unix.AT_EMPTY_PATH, "AT_EMPTY_PATH|"
	}
	return R(t.dir), b.Str(t.rel), 0, ""
}

// walk splits rel into the prefix the model knows as warden's own
// directories and the rest; kind is the node at the end of the prefix.
func (c *mountCompiler) walk(rel string) (known []string, rest []string, last *node) {
	comps := splitRel(rel)
	n := c.tree
	for i, comp := range comps {
		next := n.kids[comp]
		if next == nil || next.kind != fresh {
			return comps[:i], comps[i:], n
		}
		n = next
	}
	return comps, nil, n
}

// existing returns the target of an op that must not create it.
func (c *mountCompiler) existing(rel string) target {
	_, rest, _ := c.walk(rel)
	if len(rest) == 0 {
		return target{rel: rel, reg: -1, dir: c.root}
	}
	if len(rest) == 1 {
		if n := c.lookup(rel); n != nil && n.kind == foreign {
			// A mount point warden made: reached without symlinks.
			return target{rel: rel, reg: -1, dir: c.root}
		}
	}
	// A file or a directory: what is there decides (the mount fails if
	// it does not fit).
	r := c.b.Reg()
	c.openat2(r, R(c.root), rel, unix.O_PATH|unix.O_CLOEXEC, "O_PATH|O_CLOEXEC")
	return target{reg: r, dir: c.root}
}

// create makes the target (a directory, or an empty file when isFile) and
// returns it.
func (c *mountCompiler) create(rel string, isFile, isMkdir bool, data string) target {
	b := c.b
	known, rest, parent := c.walk(rel)
	mode := uint32(0o755)
	if isMkdir && data != "" {
		if m, err := strconv.ParseUint(data, 8, 32); err == nil {
			mode = uint32(m)
		}
	}
	// Inside warden's own directories: create what is missing (the model
	// says it is missing, so it must not fail), address by path.
	for len(rest) > 0 && parent.kind == fresh {
		if parent.kids[rest[0]] != nil {
			break // foreign, a symlink or a file: not ours to walk
		}
		p := path.Join(append(append([]string{}, known...), rest[0])...)
		n := &node{kind: fresh}
		if len(rest) == 1 && isFile {
			b.Call(unix.SYS_MKNODAT, "mknodat", R(c.root), b.Str(p), I(unix.S_IFREG|0o644, "S_IFREG|0644"), Int(0))
			n.kind = file
		} else {
			m := uint32(0o755)
			if len(rest) == 1 {
				m = mode
			}
			b.Call(unix.SYS_MKDIRAT, "mkdirat", R(c.root), b.Str(p), Oct(m))
		}
		if parent.kids == nil {
			parent.kids = map[string]*node{}
		}
		parent.kids[rest[0]] = n
		known, rest, parent = append(known, rest[0]), rest[1:], n
		if n.kind == file && len(rest) > 0 {
			break
		}
	}
	if len(rest) == 0 {
		return target{rel: rel, reg: -1, dir: c.root}
	}
	if len(rest) == 1 {
		if n := parent.kids[rest[0]]; n != nil && n.kind == foreign {
			return target{rel: rel, reg: -1, dir: c.root}
		}
	}
	// Below a mount of host files (or through a symlink, which openat2
	// refuses): one component at a time.
	cur := c.b.Reg()
	first := path.Join(append(append([]string{}, known...), rest[0])...)
	last := len(rest) == 1
	if last && isFile {
		s := b.Call(unix.SYS_MKNODAT, "mknodat", R(c.root), b.Str(first), I(unix.S_IFREG|0o644, "S_IFREG|0644"), Int(0))
		s.OkErrno, s.Jump = syscall.EEXIST, 0
		c.openat2(cur, R(c.root), first, unix.O_PATH|unix.O_CLOEXEC, "O_PATH|O_CLOEXEC")
		return target{reg: cur, dir: c.root}
	}
	if parent.kind != fresh && len(known) == 0 {
		// The root itself is foreign (an image): the first component may
		// be missing too.
		m := uint32(0o755)
		if last {
			m = mode
		}
		s := b.Call(unix.SYS_MKDIRAT, "mkdirat", R(c.root), b.Str(first), Oct(m))
		s.OkErrno = syscall.EEXIST
	}
	c.openat2(cur, R(c.root), first, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, "O_PATH|O_DIRECTORY|O_CLOEXEC")
	for i, comp := range rest[1:] {
		final := i == len(rest)-2
		next := b.Reg()
		if final && isFile {
			s := b.Call(unix.SYS_MKNODAT, "mknodat", R(cur), b.Str(comp), I(unix.S_IFREG|0o644, "S_IFREG|0644"), Int(0))
			s.OkErrno = syscall.EEXIST
			c.openat2(next, R(cur), comp, unix.O_PATH|unix.O_CLOEXEC, "O_PATH|O_CLOEXEC")
		} else {
			m := uint32(0o755)
			if final {
				m = mode
			}
			s := b.Call(unix.SYS_MKDIRAT, "mkdirat", R(cur), b.Str(comp), Oct(m))
			s.OkErrno = syscall.EEXIST
			c.openat2(next, R(cur), comp, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, "O_PATH|O_DIRECTORY|O_CLOEXEC")
		}
		b.Close(cur)
		cur = next
	}
	return target{reg: cur, dir: c.root}
}

func (c *mountCompiler) openat2(out int, dir Arg, p string, flags uint64, show string) {
	how := unix.OpenHow{Flags: flags, Resolve: resolveAll}
	s := c.b.Call(unix.SYS_OPENAT2, "openat2", dir, c.b.Str(p),
		c.b.Bytes(structBytes(&how), "{"+show+", RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS}"),
		I(unsafe.Sizeof(how), strconv.Itoa(int(unsafe.Sizeof(how)))))
	s.Out = out
}

func (c *mountCompiler) symlink(o mount.Op, rel string) {
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	t := c.create(dir, false, false, "")
	var s *Step
	if t.reg >= 0 {
		s = c.b.Call(unix.SYS_SYMLINKAT, "symlinkat", c.b.Str(o.Source), R(t.reg), c.b.Str(base))
		c.b.Close(t.reg)
	} else {
		s = c.b.Call(unix.SYS_SYMLINKAT, "symlinkat", c.b.Str(o.Source), R(c.root), c.b.Str(rel))
		if p := c.lookup(dir); p != nil {
			if p.kids == nil {
				p.kids = map[string]*node{}
			}
			p.kids[base] = &node{kind: symlink}
		}
	}
	s.OkErrno = syscall.EEXIST
}

// moveTo attaches the detached mount in register from at t.
func (c *mountCompiler) moveTo(from int, t target) {
	b := c.b
	if t.reg >= 0 {
		b.Call(unix.SYS_MOVE_MOUNT, "move_mount", R(from), b.Str(""), R(t.reg), b.Str(""),
			I(unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH, "MOVE_MOUNT_F_EMPTY_PATH|MOVE_MOUNT_T_EMPTY_PATH"))
		return
	}
	b.Call(unix.SYS_MOVE_MOUNT, "move_mount", R(from), b.Str(""), R(c.root), b.Str(t.rel), I(unix.MOVE_MOUNT_F_EMPTY_PATH, "MOVE_MOUNT_F_EMPTY_PATH"))
}

func (c *mountCompiler) setattr(fd Arg, p string, flags uintptr, show string, set uint64) {
	attr := unix.MountAttr{Attr_set: set}
	c.b.Call(unix.SYS_MOUNT_SETATTR, "mount_setattr", fd, c.b.Str(p), I(flags, show),
		c.b.Bytes(structBytes(&attr), "{set: "+attrNames(set)+"}"), I(unsafe.Sizeof(attr), strconv.Itoa(int(unsafe.Sizeof(attr)))))
}

// newFS appends fsopen, fsconfig, fsmount: a detached mount of a new fstype
// instance, in the returned register.
func (c *mountCompiler) newFS(fstype string, opts map[string]string, attr int) int {
	b := c.b
	fs := b.Reg()
	b.Call(unix.SYS_FSOPEN, "fsopen", b.Str(fstype), I(unix.FSOPEN_CLOEXEC, "FSOPEN_CLOEXEC")).Out = fs
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v := opts[k]; v == "" {
			b.Call(unix.SYS_FSCONFIG, "fsconfig", R(fs), I(unix.FSCONFIG_SET_FLAG, "FSCONFIG_SET_FLAG"), b.Str(k), Null, Int(0))
		} else {
			b.Call(unix.SYS_FSCONFIG, "fsconfig", R(fs), I(unix.FSCONFIG_SET_STRING, "FSCONFIG_SET_STRING"), b.Str(k), b.Str(v), Int(0))
		}
	}
	b.Call(unix.SYS_FSCONFIG, "fsconfig", R(fs), I(unix.FSCONFIG_CMD_CREATE, "FSCONFIG_CMD_CREATE"), Null, Null, Int(0))
	fd := b.Reg()
	b.Call(unix.SYS_FSMOUNT, "fsmount", R(fs), I(unix.FSMOUNT_CLOEXEC, "FSMOUNT_CLOEXEC"), I(uintptr(attr), attrNames(uint64(attr)))).Out = fd
	b.Close(fs)
	return fd
}

// contentFile appends the steps of a detached read-only mount of a single
// file holding o.Data (or the "go" message's data), on a tiny tmpfs.
func (c *mountCompiler) contentFile(o mount.Op) int {
	b := c.b
	fs := c.newFS("tmpfs", map[string]string{"mode": "0755", "size": "64k"}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	w := b.Reg()
	b.Call(unix.SYS_OPENAT, "openat", R(fs), b.Str("f"), I(unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, "O_CREAT|O_WRONLY|O_CLOEXEC|O_NOFOLLOW"), Oct(0o644)).Out = w
	if o.Source == c.dyn.Source && c.dyn.Source != "" {
		b.Call(unix.SYS_WRITE, "write", R(w), BufArg(c.dyn.Buf, "<go message: "+o.Source+">"), R(c.dyn.Len))
	} else {
		b.Call(unix.SYS_WRITE, "write", R(w), b.Bytes([]byte(o.Data), fmt.Sprintf("<%d bytes: %s>", len(o.Data), o.Source)), Int(len(o.Data)))
	}
	b.Close(w)
	fd := b.Reg()
	b.Call(unix.SYS_OPEN_TREE, "open_tree", R(fs), b.Str("f"), I(unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC, "OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC")).Out = fd
	b.Close(fs)
	c.setattr(R(fd), "", unix.AT_EMPTY_PATH, "AT_EMPTY_PATH", unix.MOUNT_ATTR_RDONLY)
	return fd
}

// pivot makes the new root "/" with pivot_root(".", "."): the old root ends
// up stacked on the new one and is detached, so no put_old directory is
// needed (the trick runc and bubblewrap use). Then "/" itself is made
// read-only so the payload cannot create files beside the planned mounts;
// submounts keep their own flags.
func (c *mountCompiler) pivot() {
	b := c.b
	b.Context("mount", "/", "pivot_root")
	b.Call(unix.SYS_FCHDIR, "fchdir", R(c.root))
	if c.beforePivot != nil {
		c.beforePivot()
		b.Context("mount", "/", "pivot_root")
	}
	b.Call(unix.SYS_PIVOT_ROOT, "pivot_root", b.Str("."), b.Str("."))
	// MNT_DETACH: the old root is busy (open fds of the host tree).
	b.Context("mount", "/", "detach old root")
	b.Call(unix.SYS_UMOUNT2, "umount2", b.Str("."), I(unix.MNT_DETACH, "MNT_DETACH"))
	b.Call(unix.SYS_CHDIR, "chdir", b.Str("/"))
	b.Close(c.root)
	if c.writableRoot {
		return
	}
	b.Context("mount", "/", "mount_setattr MOUNT_ATTR_RDONLY")
	c.setattr(atFDCWD, "/", 0, "0", unix.MOUNT_ATTR_RDONLY)
}

func attrs(ro, noexec bool) int {
	a := unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	if ro {
		a |= unix.MOUNT_ATTR_RDONLY
	}
	if noexec {
		a |= unix.MOUNT_ATTR_NOEXEC
	}
	return a
}

func attrNames(a uint64) string {
	var n []string
	for _, f := range []struct {
		bit  uint64
		name string
	}{{unix.MOUNT_ATTR_RDONLY, "RDONLY"}, {unix.MOUNT_ATTR_NOSUID, "NOSUID"}, {unix.MOUNT_ATTR_NODEV, "NODEV"}, {unix.MOUNT_ATTR_NOEXEC, "NOEXEC"}} {
		if a&f.bit != 0 {
			n = append(n, f.name)
		}
	}
	if len(n) == 0 {
		return "0"
	}
	return "MOUNT_ATTR_" + strings.Join(n, "|MOUNT_ATTR_")
}

func parseData(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// structBytes copies a plain struct (no pointers) into a new byte slice.
func structBytes[T any](v *T) []byte {
	b := make([]byte, unsafe.Sizeof(*v))
	copy(b, unsafe.Slice((*byte)(unsafe.Pointer(v)), len(b)))
	return b
}

// atFDCWD is AT_FDCWD (-100) as a system call argument.
var atFDCWD = I(atFDCWDValue(), "AT_FDCWD")

func atFDCWDValue() uintptr {
	v := int64(unix.AT_FDCWD)
	return uintptr(v)
}
