package fuse

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// chmodAt changes the mode of name in dirfd without following a final
// symlink. fchmodat2 (Linux 6.6) does it in one call; before it, open the
// name O_PATH|O_NOFOLLOW and chmod it through our own fd's /proc link.
func chmodAt(dirfd int, name string, mode uint32) error {
	err := unix.Fchmodat(dirfd, name, mode, unix.AT_SYMLINK_NOFOLLOW)
	if err != unix.EOPNOTSUPP && err != unix.ENOSYS {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Statx_t
	if err := statx(fd, "", &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return unix.EOPNOTSUPP // symlinks have no mode of their own on Linux
	}
	return unix.Chmod(fdPath(fd), mode)
}

func (n *node) Setattr(ctx context.Context, f gofs.FileHandle, in *gofuse.SetAttrIn, out *gofuse.AttrOut) syscall.Errno {
	if e := n.t.refuse(); e != 0 {
		return e
	}
	// With an open file, act on its fd (it may be unlinked by now);
	// otherwise on the name in its parent, never following a symlink.
	h, _ := f.(*handle)
	var s self
	if h == nil {
		var e syscall.Errno
		if s, e = n.self(); e != 0 {
			return e
		}
		defer s.d.close()
	}
	if mode, ok := in.GetMode(); ok {
		mode = n.t.perm(mode, n.Mode()&unix.S_IFMT == unix.S_IFDIR)
		var err error
		if h != nil {
			err = unix.Fchmod(h.fd, mode)
		} else {
			err = chmodAt(s.d.fd, s.name, mode)
		}
		if err != nil {
			return errno(err)
		}
	}
	if e := n.chown(h, s, in); e != 0 {
		return e
	}
	if size, ok := in.GetSize(); ok {
		if e := truncate(h, s, size); e != 0 {
			return e
		}
	}
	if in.Valid&(gofuse.FATTR_ATIME|gofuse.FATTR_MTIME) != 0 {
		ts := []unix.Timespec{
			setTime(in.Valid, gofuse.FATTR_ATIME, gofuse.FATTR_ATIME_NOW, in.Atime, in.Atimensec),
			setTime(in.Valid, gofuse.FATTR_MTIME, gofuse.FATTR_MTIME_NOW, in.Mtime, in.Mtimensec),
		}
		var err error
		if h != nil {
			err = unix.UtimesNanoAt(unix.AT_FDCWD, fdPath(h.fd), ts, 0)
		} else {
			err = unix.UtimesNanoAt(s.d.fd, s.name, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			return errno(err)
		}
	}
	var st unix.Statx_t
	var err error
	if h != nil {
		n.t.rec.note(h.path, opSetattr)
		err = statx(h.fd, "", &st)
	} else {
		n.t.rec.note(s.path, opSetattr)
		err = statx(s.d.fd, s.name, &st)
	}
	if err != nil {
		return errno(err)
	}
	n.t.fill(&out.Attr, &st)
	return 0
}

// chown translates the jail's ids to the host's. An id the map does not
// cover has no host owner to give: EPERM, as chown to an unmapped id gets
// inside a user namespace.
func (n *node) chown(h *handle, s self, in *gofuse.SetAttrIn) syscall.Errno {
	uid, gid := -1, -1
	if v, ok := in.GetUID(); ok {
		hv, ok := n.t.uids.toHost(v)
		if !ok {
			return syscall.EPERM
		}
		uid = int(hv)
	}
	if v, ok := in.GetGID(); ok {
		hv, ok := n.t.gids.toHost(v)
		if !ok {
			return syscall.EPERM
		}
		gid = int(hv)
	}
	if uid == -1 && gid == -1 {
		return 0
	}
	if h != nil {
		return errno(unix.Fchown(h.fd, uid, gid))
	}
	return errno(unix.Fchownat(s.d.fd, s.name, uid, gid, unix.AT_SYMLINK_NOFOLLOW))
}

func truncate(h *handle, s self, size uint64) syscall.Errno {
	if h != nil {
		return errno(unix.Ftruncate(h.fd, int64(size)))
	}
	// No truncateat(2): open the name (never a symlink, never blocking on
	// a FIFO) and truncate the fd.
	fd, err := unix.Openat(s.d.fd, s.name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return errno(err)
	}
	defer unix.Close(fd)
	return errno(unix.Ftruncate(fd, int64(size)))
}

func setTime(valid, set, now uint32, sec uint64, nsec uint32) unix.Timespec {
	switch {
	case valid&set == 0:
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	case valid&now != 0:
		return unix.Timespec{Nsec: unix.UTIME_NOW}
	}
	return unix.Timespec{Sec: int64(sec), Nsec: int64(nsec)}
}

// Access is only asked when the mount lacks default_permissions: answer as
// the host would for the server's user.
func (n *node) Access(ctx context.Context, mask uint32) syscall.Errno {
	if n.t.ro && mask&unix.W_OK != 0 {
		return syscall.EROFS
	}
	s, e := n.self()
	if e != 0 {
		return e
	}
	defer s.d.close()
	if err := unix.Faccessat(s.d.fd, s.name, mask, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return errno(err)
	}
	n.t.rec.note(s.path, opAccess)
	return 0
}

// xattrs: there are no *at forms that work on O_PATH fds before Linux 6.13,
// so name the file as /proc/self/fd/DIRFD/NAME with the l* calls, which do
// not follow the final component. DIRFD is our own fd, beneath ROOT.
func (n *node) xattrPath() (self, string, syscall.Errno) {
	s, e := n.self()
	if e != 0 {
		return s, "", e
	}
	return s, fdPath(s.d.fd) + "/" + s.name, 0
}

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	s, p, e := n.xattrPath()
	if e != 0 {
		return 0, e
	}
	defer s.d.close()
	k, err := unix.Lgetxattr(p, attr, dest)
	if e := errno(err); e != syscall.ENOENT {
		n.t.rec.note(s.path, opGetxattr)
	}
	return uint32(max(k, 0)), errno(err)
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	s, p, e := n.xattrPath()
	if e != 0 {
		return 0, e
	}
	defer s.d.close()
	k, err := unix.Llistxattr(p, dest)
	if e := errno(err); e != syscall.ENOENT {
		n.t.rec.note(s.path, opGetxattr)
	}
	return uint32(max(k, 0)), errno(err)
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if e := n.t.refuse(); e != 0 {
		return e
	}
	s, p, e := n.xattrPath()
	if e != 0 {
		return e
	}
	defer s.d.close()
	if err := unix.Lsetxattr(p, attr, data, int(flags)); err != nil {
		return errno(err)
	}
	n.t.rec.note(s.path, opSetxattr)
	return 0
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if e := n.t.refuse(); e != 0 {
		return e
	}
	s, p, e := n.xattrPath()
	if e != 0 {
		return e
	}
	defer s.d.close()
	if err := unix.Lremovexattr(p, attr); err != nil {
		return errno(err)
	}
	n.t.rec.note(s.path, opSetxattr)
	return 0
}
