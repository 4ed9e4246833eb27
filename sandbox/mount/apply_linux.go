package mount

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Error is a failed op, with the whole operation for the message.
type Error struct {
	Op   Op
	Step string // "open source", "create target", "mount", "setattr", ...
	Err  error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %s: %v", e.Op.Kind, e.Op.Target, e.Step, e.Err)
}
func (e *Error) Unwrap() error { return e.Err }

// Apply builds a new root from ops on a tmpfs attached at scratch, then makes
// it the root of the calling process's mount namespace and makes "/" itself
// read-only (submounts keep their own flags). It returns the ops it skipped
// because they were optional and their source was missing.
//
// Preconditions:
//   - The caller is stage-2: in its own user and mount namespace, holding
//     CAP_SYS_ADMIN there; in its own pid namespace for Proc ops and its own
//     network namespace for Sysfs ops.
//   - scratch is an existing directory that may be covered (its content is
//     not needed once sources are open).
func Apply(ops []Op, scratch string) (skipped []Op, err error) {
	// We make every mount a slave first because the kernel propagates mount
	// events between peers; otherwise our tmpfs and binds could appear in the
	// host's namespace (mount_namespaces(7), "shared subtrees").
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return nil, &Error{Op: Op{Kind: Remount, Target: "/"}, Step: "make / rslave", Err: err}
	}
	// Open every source before the scratch tmpfs covers anything.
	srcs := make([]int, len(ops))
	defer func() {
		for _, fd := range srcs {
			if fd > 0 {
				unix.Close(fd)
			}
		}
	}()
	for i, o := range ops {
		if o.Kind != Bind && o.Kind != DevBind && !(o.Kind == Hide && o.File) {
			continue
		}
		src := o.Source
		if o.Kind == Hide {
			src = "/dev/null"
		}
		fd, err := cloneTree(src, o.Kind == Bind, o.ReadOnly || o.Kind == Hide, o.Kind == Bind)
		if err != nil {
			if o.Optional && errors.Is(err, unix.ENOENT) {
				skipped = append(skipped, o)
				srcs[i] = -1
				continue
			}
			return nil, &Error{Op: o, Step: "open source " + src, Err: err}
		}
		srcs[i] = fd
	}
	root, err := newFS("tmpfs", map[string]string{"mode": "0755"}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return nil, &Error{Op: Op{Kind: Tmpfs, Target: "/"}, Step: "create root", Err: err}
	}
	defer unix.Close(root)
	if err := unix.MoveMount(root, "", unix.AT_FDCWD, scratch, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return nil, &Error{Op: Op{Kind: Tmpfs, Target: "/"}, Step: "attach root at " + scratch, Err: err}
	}
	for i, o := range ops {
		if srcs[i] < 0 {
			continue
		}
		if err := applyOne(root, o, srcs[i]); err != nil {
			if o.Optional && errors.Is(err, unix.ENOENT) {
				skipped = append(skipped, o)
				continue
			}
			return nil, err
		}
	}
	return skipped, pivot(root)
}

func applyOne(root int, o Op, src int) error {
	rel := strings.TrimPrefix(path.Clean(o.Target), "/")
	if o.Kind == Symlink {
		dir, err := ensureDir(root, path.Dir(rel))
		if err != nil {
			return &Error{Op: o, Step: "create parent", Err: err}
		}
		defer unix.Close(dir)
		if err := unix.Symlinkat(o.Source, dir, path.Base(rel)); err != nil && !errors.Is(err, unix.EEXIST) {
			return &Error{Op: o, Step: "symlink", Err: err}
		}
		return nil
	}
	var t int
	var err error
	if o.Kind == Remount || o.Kind == Hide {
		// Never create what we are asked to hide or protect: the parent
		// directory may be a read-write bind of a host directory, and a
		// new mount point would appear on the host.
		t, err = openBeneath(root, rel, unix.O_PATH)
	} else if o.File {
		t, err = ensureFile(root, rel)
	} else {
		t, err = ensureDir(root, rel)
	}
	if err != nil {
		return &Error{Op: o, Step: "create target", Err: err}
	}
	defer unix.Close(t)
	switch o.Kind {
	case Mkdir:
		return nil
	case File:
		fd, err := contentFile(o.Data)
		if err != nil {
			return &Error{Op: o, Step: "create content", Err: err}
		}
		defer unix.Close(fd)
		return moveTo(o, fd, t)
	case Bind, DevBind:
		return moveTo(o, src, t)
	case Hide:
		if o.File {
			return moveTo(o, src, t)
		}
		fd, err := newFS("tmpfs", map[string]string{"mode": "0000", "size": "4k"}, attrs(true, true))
		if err != nil {
			return &Error{Op: o, Step: "tmpfs", Err: err}
		}
		defer unix.Close(fd)
		return moveTo(o, fd, t)
	case Remount:
		// A read-only bind of the target onto itself: mount_setattr on the
		// target alone would change the whole mount it belongs to (all of
		// /proc, say), not just this subtree.
		fd, err := unix.OpenTree(t, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH|unix.AT_RECURSIVE)
		if err != nil {
			return &Error{Op: o, Step: "open_tree", Err: err}
		}
		defer unix.Close(fd)
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE,
			&unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID}); err != nil {
			return &Error{Op: o, Step: "mount_setattr MOUNT_ATTR_RDONLY", Err: err}
		}
		return moveTo(o, fd, t)
	}
	fstype := map[Kind]string{Tmpfs: "tmpfs", Proc: "proc", Sysfs: "sysfs", Devpts: "devpts", Mqueue: "mqueue"}[o.Kind]
	if fstype == "" {
		return &Error{Op: o, Step: "plan", Err: fmt.Errorf("unknown op kind %q", o.Kind)}
	}
	opts := parseData(o.Data)
	a := attrs(o.ReadOnly || o.Kind == Sysfs, o.Kind != Tmpfs)
	if o.Kind == Devpts {
		opts["newinstance"] = ""
		a = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC
	}
	fd, err := newFS(fstype, opts, a)
	if err != nil {
		return &Error{Op: o, Step: "create " + fstype, Err: err}
	}
	defer unix.Close(fd)
	return moveTo(o, fd, t)
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

func moveTo(o Op, from, to int) error {
	if err := unix.MoveMount(from, "", to, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return &Error{Op: o, Step: "move_mount", Err: err}
	}
	return nil
}

// cloneTree returns a detached copy of the mount tree at src (open_tree
// OPEN_TREE_CLONE), made read-only and nosuid as asked before it is ever
// attached.
func cloneTree(src string, recursive, ro, nosuid bool) (int, error) {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, flags)
	if err != nil {
		return -1, err
	}
	var set uint64
	if ro {
		set |= unix.MOUNT_ATTR_RDONLY
	}
	if nosuid {
		set |= unix.MOUNT_ATTR_NOSUID
	}
	if set != 0 {
		// mount_setattr only sets the bits we name, so it can never clear
		// the flags the kernel locked on mounts from a more privileged
		// namespace; a MS_REMOUNT|MS_RDONLY would have to restate them
		// or fail with EPERM.
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE,
			&unix.MountAttr{Attr_set: set}); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("mount_setattr: %w", err)
		}
	}
	return fd, nil
}

// newFS creates a detached mount of a new fstype instance.
func newFS(fstype string, opts map[string]string, attr int) (int, error) {
	fs, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen %s: %w", fstype, err)
	}
	defer unix.Close(fs)
	for k, v := range opts {
		if v == "" {
			err = unix.FsconfigSetFlag(fs, k)
		} else {
			err = unix.FsconfigSetString(fs, k, v)
		}
		if err != nil {
			return -1, fmt.Errorf("fsconfig %s %s=%s: %w", fstype, k, v, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("fsconfig create %s: %w", fstype, err)
	}
	fd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return -1, fmt.Errorf("fsmount %s: %w", fstype, err)
	}
	return fd, nil
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

// contentFile returns a detached read-only mount of a single file holding
// data, on a private tiny tmpfs.
func contentFile(data string) (int, error) {
	fs, err := newFS("tmpfs", map[string]string{"mode": "0755", "size": "64k"}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fs)
	f, err := unix.Openat(fs, "f", unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return -1, fmt.Errorf("create: %w", err)
	}
	_, err = unix.Write(f, []byte(data))
	unix.Close(f)
	if err != nil {
		return -1, fmt.Errorf("write: %w", err)
	}
	fd, err := unix.OpenTree(fs, "f", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("open_tree: %w", err)
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("mount_setattr: %w", err)
	}
	return fd, nil
}

// resolveFlags keep every lookup inside the new root and refuse symlinks and
// magic links in any component, because a target that is a symlink would
// let a mount land outside the place the plan names.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

func openBeneath(dir int, rel string, flags uint64) (int, error) {
	return unix.Openat2(dir, rel, &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolveFlags})
}

// ensureDir creates rel (and its parents) under root and returns an O_PATH fd
// of it, opened without following symlinks.
func ensureDir(root int, rel string) (int, error) {
	if rel == "" || rel == "." {
		return unix.Openat2(root, ".", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC})
	}
	fd, err := openBeneath(root, rel, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	parent, err := ensureDir(root, path.Dir(rel))
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	if err := unix.Mkdirat(parent, path.Base(rel), 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("mkdir %s: %w", rel, err)
	}
	return openBeneath(parent, path.Base(rel), unix.O_PATH|unix.O_DIRECTORY)
}

// ensureFile creates an empty regular file rel under root as a mount point.
func ensureFile(root int, rel string) (int, error) {
	parent, err := ensureDir(root, path.Dir(rel))
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	fd, err := openBeneath(parent, path.Base(rel), unix.O_CREAT|unix.O_WRONLY|unix.O_NOFOLLOW)
	if err != nil && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.ETXTBSY) && !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EROFS) {
		return -1, fmt.Errorf("create %s: %w", rel, err)
	}
	if err == nil {
		unix.Close(fd)
	}
	return openBeneath(parent, path.Base(rel), unix.O_PATH)
}

// pivot makes root the new "/" with pivot_root(".", "."): the old root ends
// up stacked on the new one and is detached, so no put_old directory is
// needed (the trick runc and bubblewrap use).
func pivot(root int) error {
	if err := unix.Fchdir(root); err != nil {
		return &Error{Op: Op{Kind: Tmpfs, Target: "/"}, Step: "chdir new root", Err: err}
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return &Error{Op: Op{Kind: Tmpfs, Target: "/"}, Step: "pivot_root", Err: err}
	}
	// MNT_DETACH because the old root is busy (our own cwd until the
	// chdir below, and open fds of the host tree).
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return &Error{Op: Op{Kind: Tmpfs, Target: "/"}, Step: "detach old root", Err: err}
	}
	if err := os.Chdir("/"); err != nil {
		return &Error{Op: Op{Kind: Tmpfs, Target: "/"}, Step: "chdir /", Err: err}
	}
	// The root itself is read-only so the payload cannot create files
	// beside the planned mounts; submounts keep their own flags.
	if err := unix.MountSetattr(unix.AT_FDCWD, "/", 0, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return &Error{Op: Op{Kind: Remount, Target: "/"}, Step: "mount_setattr MOUNT_ATTR_RDONLY", Err: err}
	}
	return nil
}
