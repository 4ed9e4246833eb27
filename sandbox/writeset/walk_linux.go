package writeset

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Overlay xattrs of a "userxattr" mount.
const (
	xattrOpaque   = "user.overlay.opaque"   // "y": opaque dir; "x": holds xattr whiteouts
	xattrWhiteout = "user.overlay.whiteout" // on an empty regular file: a whiteout
	xattrOverlay  = "user.overlay."         // prefix of the overlay's own xattrs
)

// resolveBeneath keeps a one-name lookup from a directory fd inside that
// directory's tree and mount: no symlink (not even as the last
// component), no magic link, no mount crossing.
const resolveBeneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS |
	unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// openAt opens name below dirfd without following any symlink.
func openAt(dirfd int, name string, flags int, mode uint32) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_NOFOLLOW | unix.O_CLOEXEC),
		Mode:    uint64(mode),
		Resolve: resolveBeneath,
	}
	for {
		fd, err := unix.Openat2(dirfd, name, &how)
		// EAGAIN: a concurrent rename somewhere on the system made the
		// kernel unsure of the walk; it asks us to retry.
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// lstatAt is fstatat(AT_SYMLINK_NOFOLLOW).
func lstatAt(dirfd int, name string, st *unix.Stat_t) error {
	for {
		err := unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW)
		if err != unix.EINTR {
			return err
		}
	}
}

func isDir(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }
func isReg(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFREG }

// isWhiteoutDev reports the classic whiteout: a 0/0 character device.
func isWhiteoutDev(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func typeOf(st *unix.Stat_t) string {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return TypeFile
	case unix.S_IFDIR:
		return TypeDir
	case unix.S_IFLNK:
		return TypeSymlink
	}
	return TypeOther
}

func fileSize(st *unix.Stat_t) int64 {
	if isReg(st) {
		return st.Size
	}
	return 0
}

func sameInode(a, b *unix.Stat_t) bool {
	return a.Dev == b.Dev && a.Ino == b.Ino && a.Mode&unix.S_IFMT == b.Mode&unix.S_IFMT
}

func join(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// opaqueOf reads the overlay opaque mark of an open directory: "y", "x" or
// "". Like the kernel, it accepts only a one-byte value. User xattrs
// cannot be read through O_PATH fds; those give "".
func opaqueOf(fd int) string {
	var b [1]byte
	n, err := unix.Fgetxattr(fd, xattrOpaque, b[:])
	if err != nil || n != 1 {
		return ""
	}
	return string(b[:1])
}

// isXattrWhiteout reports the newer whiteout: an empty regular file with
// the whiteout xattr, in a directory marked opaque "x" (parentX). fix is
// passed to openRegular.
func isXattrWhiteout(dirfd int, name string, st *unix.Stat_t, parentX, fix bool) bool {
	if !parentX || !isReg(st) || st.Size != 0 {
		return false
	}
	fd, err := openRegular(dirfd, name, st, fix)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	_, err = unix.Fgetxattr(fd, xattrWhiteout, nil)
	return err == nil
}

// openRegular opens the regular file name (stat'ed as st) for reading,
// without blocking (should it have become a fifo) and checks that it is
// still the same inode. With fix, an unreadable file of ours is made
// readable for the moment of the open (see openFixing).
func openRegular(dirfd int, name string, st *unix.Stat_t, fix bool) (int, error) {
	fd, _, err := openFixing(dirfd, name, unix.O_RDONLY|unix.O_NONBLOCK, st, 0o400, fix, true)
	if err != nil {
		return -1, err
	}
	var got unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if !sameInode(&got, st) {
		unix.Close(fd)
		return -1, fmt.Errorf("%q changed while being read", name)
	}
	return fd, nil
}

// openFixing opens name below dirfd. When that fails with EACCES, fix is
// set and the entry is owned by us, it adds the owner permission bits
// add, opens again, and (with restore) puts the mode back at once; without
// restore the caller puts st's mode back when done (a directory must stay
// searchable while it is walked). fixed reports that the mode was changed.
//
// We do this because the payload ran as (namespaced) root over files the
// host user owns: `chmod 000` in the jail leaves an upper entry that the
// host user, who has no CAP_DAC_OVERRIDE, can neither read nor copy.
// fchmodat2 with AT_SYMLINK_NOFOLLOW (Linux 6.6) refuses symlinks, so the
// chmod cannot be redirected; without it we leave the entry unreadable.
func openFixing(dirfd int, name string, flags int, st *unix.Stat_t, add uint32, fix, restore bool) (fd int, fixed bool, err error) {
	fd, err = openAt(dirfd, name, flags, 0)
	if err != unix.EACCES || !fix || int(st.Uid) != os.Geteuid() {
		return fd, false, err
	}
	perm := st.Mode & 0o7777
	if unix.Fchmodat(dirfd, name, perm|add, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return -1, false, err
	}
	fd, err = openAt(dirfd, name, flags, 0)
	if err != nil || restore {
		unix.Fchmodat(dirfd, name, perm, unix.AT_SYMLINK_NOFOLLOW)
		return fd, false, err
	}
	return fd, true, nil
}

// readNames lists an open directory (without "." and "..") from its start.
func readNames(fd int) ([]string, error) {
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return nil, err
	}
	buf := make([]byte, 32<<10)
	var names []string
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// frame is one directory of the upper being walked.
type frame struct {
	fd    int         // open O_RDONLY; -1 while a child is walked (see walk)
	st    unix.Stat_t // as found, before any permission fix
	path  string      // "/" for the root
	depth int         // 0 for the root
	names []string    // entries not visited yet
	fixed bool        // owner permission was added: put st's mode back on leaving
}

func (f *frame) release() {
	if f.fd < 0 {
		return
	}
	if f.fixed {
		unix.Fchmod(f.fd, f.st.Mode&0o7777)
	}
	unix.Close(f.fd)
	f.fd = -1
}

// A visitor receives the upper's entries from walk.
type visitor interface {
	// enter is called when the walk starts on directory f (its fd and
	// names ready), parent is nil for the root.
	enter(parent, f *frame) error
	// entry is called for each entry of f, stat'ed without following.
	// For a directory it returns whether to walk into it; a visitor
	// checks f.depth against MaxDepth itself.
	entry(f *frame, name string, st *unix.Stat_t) (descend bool, err error)
	// leave is called when all of f's entries were visited, f.fd open.
	leave(f *frame) error
}

// walk visits the tree below the directory fd upper, depth first, with an
// explicit stack. Only the directory being read holds an fd (and those
// whose permissions were fixed, to put them back): going up, the parent
// is reopened through ".." and must be the same inode as before, so a
// deep tree costs no more fds than a flat one.
func walk(upper int, v visitor) error {
	fd, err := unix.Openat(upper, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open upper: %w", err)
	}
	root := &frame{fd: fd, path: "/"}
	stack := []*frame{root}
	defer func() {
		for _, f := range stack {
			f.release()
		}
	}()
	if err := unix.Fstat(fd, &root.st); err != nil {
		return fmt.Errorf("stat upper: %w", err)
	}
	if root.names, err = readNames(fd); err != nil {
		return fmt.Errorf("read upper: %w", err)
	}
	if err := v.enter(nil, root); err != nil {
		return err
	}
	for len(stack) > 0 {
		top := stack[len(stack)-1]
		if len(top.names) == 0 {
			if len(stack) > 1 {
				if err := reopenParent(top, stack[len(stack)-2]); err != nil {
					return err
				}
			}
			err := v.leave(top)
			top.release()
			stack = stack[:len(stack)-1]
			if err != nil {
				return err
			}
			continue
		}
		name := top.names[0]
		top.names = top.names[1:]
		var st unix.Stat_t
		if err := lstatAt(top.fd, name, &st); err != nil {
			if err == unix.ENOENT {
				continue
			}
			return fmt.Errorf("stat %s: %w", join(top.path, name), err)
		}
		descend, err := v.entry(top, name, &st)
		if err != nil {
			return err
		}
		if !descend {
			continue
		}
		child, err := openFrame(top, name, &st)
		if err != nil {
			return err
		}
		stack = append(stack, child)
		if err := v.enter(top, child); err != nil {
			return err
		}
		if !top.fixed {
			unix.Close(top.fd)
			top.fd = -1
		}
	}
	return nil
}

func openFrame(parent *frame, name string, st *unix.Stat_t) (*frame, error) {
	p := join(parent.path, name)
	fd, fixed, err := openFixing(parent.fd, name, unix.O_RDONLY|unix.O_DIRECTORY, st, 0o500, true, false)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	f := &frame{fd: fd, st: *st, path: p, depth: parent.depth + 1, fixed: fixed}
	var got unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		f.release()
		return nil, fmt.Errorf("stat %s: %w", p, err)
	}
	if !sameInode(&got, st) {
		f.release()
		return nil, fmt.Errorf("%s changed while being walked", p)
	}
	if f.names, err = readNames(fd); err != nil {
		f.release()
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return f, nil
}

// reopenParent gives parent an fd again, through child's "..". The tree
// is not expected to change (the jail is dead); if it did, the inode
// check makes us stop rather than walk somewhere else.
func reopenParent(child, parent *frame) error {
	if parent.fd >= 0 {
		return nil
	}
	fd, err := unix.Openat(child.fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", parent.path, err)
	}
	var got unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil || !sameInode(&got, &parent.st) {
		unix.Close(fd)
		return fmt.Errorf("reopen %s: %w", parent.path, errChanged)
	}
	parent.fd = fd
	return nil
}

var errChanged = errors.New("directory changed while being walked")
