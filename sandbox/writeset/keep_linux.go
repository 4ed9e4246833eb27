package writeset

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Keep copies the overlay upper directory upper (an fd, left open) into
// the directory dst, created if missing and refused if not empty, so that
// dst, mounted later as an overlay lower layer (with userxattr) above the
// original lowers, shows what the jail saw:
//
//   - directories, regular files (content, holes skipped), symlinks (as
//     symlinks), with their permission bits and access and modification
//     times, and the user.* xattrs of files and directories (except the
//     overlay's own user.overlay.* ones);
//   - the opaque mark (user.overlay.opaque) of directories;
//   - whiteouts, as 0/0 character devices (mknod, allowed unprivileged
//     since Linux 5.8); where that fails, as xattr whiteouts (an empty
//     file with user.overlay.whiteout in a directory marked opaque "x",
//     honoured since Linux 6.7);
//   - fifos and sockets, as inert inodes of the same type and mode (mknod
//     makes them unprivileged; they are part of what the jail saw and
//     carry no data);
//   - hard links between upper files, as hard links (so that a payload
//     cannot multiply its disk use by linking one big file many times).
//
// Ownership is not copied: everything belongs to the caller, as in the
// upper of a single-uid jail.
//
// Device nodes (other than whiteouts) cannot be made unprivileged, and
// could not have been made in the jail; Keep skips them, finishes the
// copy and returns an *IncompleteError naming them (and any xattr it
// could not set). Any other error stops the copy and leaves dst partly
// written: the caller removes it.
func Keep(upper int, dst string) error {
	root, err := openKeepDir(dst)
	if err != nil {
		return fmt.Errorf("keep %s: %w", dst, err)
	}
	k := &keeper{root: root, links: map[[2]uint64]string{}}
	defer k.close()
	if err := walk(upper, k); err != nil {
		return fmt.Errorf("keep %s: %w", dst, err)
	}
	if k.limit != nil {
		return fmt.Errorf("keep %s: %w", dst, k.limit)
	}
	if len(k.skipped) > 0 {
		return &IncompleteError{Dir: dst, Skipped: k.skipped}
	}
	return nil
}

// IncompleteError is Keep's error when it copied everything but Skipped.
type IncompleteError struct {
	Dir     string
	Skipped []Skipped
}

// Skipped is an upper entry, or a part of it, that Keep did not reproduce.
type Skipped struct {
	Path   string // jail-relative, "/a/b"
	Reason string
}

func (e *IncompleteError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "keep %s: %d not reproduced:", e.Dir, len(e.Skipped))
	for i, s := range e.Skipped {
		if i == 3 {
			fmt.Fprintf(&b, " and %d more", len(e.Skipped)-i)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %s (%s)", displayPath(s.Path), s.Reason)
	}
	return b.String()
}

// openKeepDir makes dst (and its missing parents) or checks that it is an
// empty directory, and opens it.
func openKeepDir(dst string) (int, error) {
	err := os.Mkdir(dst, 0o700)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
			err = os.Mkdir(dst, 0o700)
		}
	}
	made := err == nil
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return -1, err
	}
	fd, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if !made {
		names, err := readNames(fd)
		if err == nil && len(names) > 0 {
			err = errors.New("not empty")
		}
		if err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// mknodWhiteout makes a 0/0 character device; a variable so that tests
// can make it fail.
var mknodWhiteout = func(dirfd int, name string) error {
	return unix.Mknodat(dirfd, name, unix.S_IFCHR, 0)
}

// kdir is a directory of dst being filled.
type kdir struct {
	fd     int         // -1 while a child is filled
	st     unix.Stat_t // its own, to check it when reopened through ".."
	opaque string      // the mark to set: the upper's "y", or "x" after an xattr whiteout
	upperX bool        // the upper directory is marked "x": may hold xattr whiteouts
}

type keeper struct {
	root    int // dst, open all along (for hard links)
	stack   []kdir
	pending string // the dst directory made for the upper one walk enters next
	links   map[[2]uint64]string
	skipped []Skipped
	limit   error
	buf     []byte
}

func (k *keeper) close() {
	for _, d := range k.stack {
		if d.fd >= 0 {
			unix.Close(d.fd)
		}
	}
	k.stack = nil
	unix.Close(k.root)
}

func (k *keeper) skip(p, reason string) {
	k.skipped = append(k.skipped, Skipped{Path: p, Reason: reason})
}

func (k *keeper) enter(parent, f *frame) error {
	var fd int
	var err error
	if parent == nil {
		fd, err = unix.Dup(k.root)
	} else {
		fd, err = openAt(k.stack[len(k.stack)-1].fd, k.pending, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", f.path, err)
	}
	d := kdir{fd: fd}
	if err := unix.Fstat(fd, &d.st); err != nil {
		unix.Close(fd)
		return err
	}
	// Whatever the umask did to mkdir, we must be able to fill it.
	if err := unix.Fchmod(fd, 0o700); err != nil {
		unix.Close(fd)
		return err
	}
	op := opaqueOf(f.fd)
	d.upperX = op == "x"
	if op == "y" && parent != nil { // the kernel never makes a root opaque
		d.opaque = "y"
	}
	if parent != nil {
		top := &k.stack[len(k.stack)-1]
		unix.Close(top.fd)
		top.fd = -1
	}
	k.stack = append(k.stack, d)
	return nil
}

// leave finishes a dst directory once all its entries are in: xattrs,
// mode, times (last, as adding entries changed its mtime).
func (k *keeper) leave(f *frame) error {
	d := k.stack[len(k.stack)-1]
	k.stack = k.stack[:len(k.stack)-1]
	defer unix.Close(d.fd)
	if len(k.stack) > 0 {
		// Reopen the parent first: ".." needs search permission on d,
		// which its final mode may not give.
		parent := &k.stack[len(k.stack)-1]
		fd, err := unix.Openat(d.fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("reopen parent of %s: %w", f.path, err)
		}
		var got unix.Stat_t
		if err := unix.Fstat(fd, &got); err != nil || !sameInode(&got, &parent.st) {
			unix.Close(fd)
			return fmt.Errorf("reopen parent of %s: %w", f.path, errChanged)
		}
		parent.fd = fd
	}
	k.copyXattrs(f.fd, d.fd, f.path)
	if d.opaque != "" {
		if err := unix.Fsetxattr(d.fd, xattrOpaque, []byte(d.opaque), 0); err != nil {
			return fmt.Errorf("mark %s opaque: %w", f.path, err)
		}
	}
	return finish(d.fd, &f.st, f.path)
}

// finish gives an open dst entry the upper entry's permission bits and
// times.
func finish(fd int, st *unix.Stat_t, p string) error {
	if err := unix.Fchmod(fd, st.Mode&0o7777); err != nil {
		return fmt.Errorf("chmod %s: %w", p, err)
	}
	ts := [2]unix.Timespec{st.Atim, st.Mtim}
	// utimensat(fd, NULL, ...) is futimens: times of the fd itself.
	if _, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0); e != 0 {
		return fmt.Errorf("set times of %s: %w", p, e)
	}
	return nil
}

func (k *keeper) entry(f *frame, name string, st *unix.Stat_t) (bool, error) {
	top := &k.stack[len(k.stack)-1]
	p := join(f.path, name)
	if isWhiteoutDev(st) || isXattrWhiteout(f.fd, name, st, top.upperX, true) {
		return false, k.whiteout(top, name, p)
	}
	var err error
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if f.depth+1 > MaxDepth {
			k.limit = fmt.Errorf("%w: %s is deeper than %d levels", ErrLimit, p, MaxDepth)
			return false, nil
		}
		if err = unix.Mkdirat(top.fd, name, 0o700); err == nil {
			k.pending = name
			return true, nil
		}
	case unix.S_IFREG:
		err = k.copyFile(f, top, name, p, st)
	case unix.S_IFLNK:
		var target string
		if target, err = readlink(f.fd, name); err == nil {
			if err = unix.Symlinkat(target, top.fd, name); err == nil {
				err = unix.UtimesNanoAt(top.fd, name, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
			}
		}
	case unix.S_IFIFO, unix.S_IFSOCK:
		err = k.special(top, name, p, st)
	default:
		k.skip(p, "a device node")
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("copy %s: %w", p, err)
	}
	return false, nil
}

// whiteout reproduces a whiteout in d.
func (k *keeper) whiteout(d *kdir, name, p string) error {
	err := mknodWhiteout(d.fd, name)
	if err == nil {
		return nil
	}
	if d.opaque == "y" {
		// An opaque directory hides all below it already, and the
		// kernel looks for xattr whiteouts only in "x" directories.
		return nil
	}
	fd, err2 := openAt(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err2 != nil {
		return fmt.Errorf("whiteout %s: %w (mknod: %v)", p, err2, err)
	}
	defer unix.Close(fd)
	if err2 := unix.Fsetxattr(fd, xattrWhiteout, []byte("y"), 0); err2 != nil {
		return fmt.Errorf("whiteout %s: %w (mknod: %v)", p, err2, err)
	}
	d.opaque = "x"
	return nil
}

// special makes a fifo or a socket inode like st.
func (k *keeper) special(d *kdir, name, p string, st *unix.Stat_t) error {
	if err := unix.Mknodat(d.fd, name, st.Mode&unix.S_IFMT|0o600, 0); err != nil {
		return err
	}
	// We just made it in our own directory: nothing to follow there.
	if err := unix.Fchmodat(d.fd, name, st.Mode&0o7777, 0); err != nil {
		return err
	}
	return unix.UtimesNanoAt(d.fd, name, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}

// copyFile copies a regular file, or links it to its first copy.
func (k *keeper) copyFile(f *frame, d *kdir, name, p string, st *unix.Stat_t) error {
	key := [2]uint64{st.Dev, st.Ino}
	if st.Nlink > 1 {
		if first, ok := k.links[key]; ok && k.link(first, d.fd, name) == nil {
			return nil
		}
	}
	src, err := openRegular(f.fd, name, st, true)
	if err != nil {
		return err
	}
	defer unix.Close(src)
	dst, err := openAt(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer unix.Close(dst)
	if err := k.copyData(dst, src, st.Size); err != nil {
		return err
	}
	k.copyXattrs(src, dst, p)
	if err := finish(dst, st, p); err != nil {
		return err
	}
	if st.Nlink > 1 {
		if _, ok := k.links[key]; !ok {
			k.links[key] = p
		}
	}
	return nil
}

// link hard-links dst path first (made by this Keep) as name in dirfd,
// walking to it from dst one component at a time. Callers copy instead
// when it fails (a directory on the way may have lost its search bit).
func (k *keeper) link(first string, dirfd int, name string) error {
	comps := strings.Split(first[1:], "/")
	fd := k.root
	for _, c := range comps[:len(comps)-1] {
		next, err := openAt(fd, c, unix.O_PATH|unix.O_DIRECTORY, 0)
		if fd != k.root {
			unix.Close(fd)
		}
		if err != nil {
			return err
		}
		fd = next
	}
	if fd != k.root {
		defer unix.Close(fd)
	}
	return unix.Linkat(fd, comps[len(comps)-1], dirfd, name, 0)
}

// copyData copies size bytes, skipping the source's holes (a payload's
// sparse terabyte costs us what it cost the jail's tmpfs).
func (k *keeper) copyData(dst, src int, size int64) error {
	if k.buf == nil {
		k.buf = make([]byte, 128<<10)
	}
	for off := int64(0); off < size; {
		data, err := unix.Seek(src, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break // only a hole is left
		}
		end := size
		if err != nil {
			data = off // no SEEK_DATA on this file system: copy it all
		} else if hole, err := unix.Seek(src, data, unix.SEEK_HOLE); err == nil && hole < size {
			end = hole
		}
		for data < end {
			n := int(min(int64(len(k.buf)), end-data))
			if err := preadFull(src, k.buf[:n], data); err != nil {
				return err
			}
			if err := pwriteFull(dst, k.buf[:n], data); err != nil {
				return err
			}
			data += int64(n)
		}
		off = end
	}
	return unix.Ftruncate(dst, size)
}

func pwriteFull(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// copyXattrs copies the user.* xattrs but the overlay's own from one open
// file or directory to another; one it cannot set is reported as skipped.
func (k *keeper) copyXattrs(src, dst int, p string) {
	sz, err := unix.Flistxattr(src, nil)
	if err != nil || sz <= 0 {
		return
	}
	list := make([]byte, sz)
	if sz, err = unix.Flistxattr(src, list); err != nil {
		return
	}
	for _, n := range bytes.Split(list[:sz], []byte{0}) {
		name := string(n)
		if !strings.HasPrefix(name, "user.") || strings.HasPrefix(name, xattrOverlay) {
			continue
		}
		vsz, err := unix.Fgetxattr(src, name, nil)
		if err != nil {
			continue
		}
		val := make([]byte, vsz)
		if vsz, err = unix.Fgetxattr(src, name, val); err != nil {
			continue
		}
		if err := unix.Fsetxattr(dst, name, val[:vsz], 0); err != nil {
			k.skip(p, fmt.Sprintf("xattr %s: %v", name, err))
		}
	}
}
