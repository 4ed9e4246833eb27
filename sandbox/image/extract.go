package image

import (
	"archive/tar"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The extractor writes one layer's tar into an empty directory, in the
// overlayfs format umoci (OverlayfsRootfs, UserXattr, rootless) wrote
// before it, as the calling user:
//
//   - ".wh.NAME" becomes a character device 0/0 NAME (a whiteout; mknod of
//     one needs no privilege since Linux 5.8), unless an opaque directory of
//     this layer holds it already; ".wh..wh..opq" sets user.overlay.opaque=y
//     on its directory (and removes the whiteouts this layer made in it);
//   - files, directories, symlinks, fifos and hard links (within the layer)
//     are made as the caller: nothing is chowned. An owner other than 0:0
//     is kept in the xattr user.rootlesscontainers (see rootlessXattr);
//   - modes are kept, setuid, setgid and sticky bits included; so are
//     mtimes and atimes (a symlink's too, without following it);
//   - of an entry's PAX xattrs only user.* are set (on files and
//     directories: Linux has no user.* xattrs on other types); the image's
//     own user.rootlesscontainers is replaced; user.overlay.X is written
//     escaped, as user.overlay.overlay.X, so that an image cannot steer the
//     overlay (overlayfs since 6.7 shows it to the jail as user.overlay.X);
//   - device nodes are not made (the scanner skips them);
//   - an entry that is already there is replaced, but a directory stays a
//     directory (its metadata is the last entry's); the parents an entry
//     needs are made (mode 0755) if the tar has none, replacing what is
//     not a directory (a whiteout this layer made becomes an opaque
//     directory, as in overlayfs).
//
// Directories are made 0700 and get their own mode, xattrs and times at
// the end (finish), deepest first: a 0555 directory still gets its
// children, and creating a child does not change a parent's mtime after it
// was set. The layer's root keeps u+rwx whatever the tar says: the store
// must rename it into layers/ (which takes write permission on a
// directory) and remove it; in the jail its owner is root, whom the bits
// do not restrain.
//
// Every file is made relative to a directory fd that was opened with
// O_NOFOLLOW (or openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), and created
// with O_EXCL or an *at call that does not follow the last component: a
// symlink where a directory is expected is refused (errHostile) rather than
// followed, so nothing is written outside the layer even if the scanner
// missed an entry.
type extractor struct {
	root int // the layer's directory, O_RDONLY|O_DIRECTORY

	// dirs are the directories this layer has (cleaned relative paths,
	// "." the root), with the header of the entry that made them, or nil
	// for those made as parents.
	dirs map[string]*tar.Header
	// whiteouts are the plain whiteouts made; opaque the opaque dirs.
	whiteouts map[string]bool
	opaque    map[string]bool

	// The last parent directory an entry was made in, open.
	cachePath string
	cacheFd   int

	buf []byte
	now time.Time
}

// errHostile is an entry that would write through a symlink: the scanner
// refuses those first, so this is a second line.
type errHostile struct{ why string }

func (e *errHostile) Error() string { return e.why }

func newExtractor(dir string) (*extractor, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &pathError{"open", dir, err}
	}
	return &extractor{root: fd, dirs: map[string]*tar.Header{}, whiteouts: map[string]bool{},
		opaque: map[string]bool{}, cacheFd: -1, buf: make([]byte, 256<<10), now: time.Now()}, nil
}

// close releases the extractor's fds.
func (e *extractor) close() {
	e.dropCache()
	if e.root >= 0 {
		unix.Close(e.root)
		e.root = -1
	}
}

// pathError is an operation on a path of the layer that failed.
type pathError struct {
	op, path string
	err      error
}

func (e *pathError) Error() string { return e.op + " " + e.path + ": " + e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }

// entry makes the entry h (checked by the scanner) with the content r.
func (e *extractor) entry(h *tar.Header, r io.Reader) error {
	name := path.Clean(h.Name)
	if name == "." {
		if h.Typeflag != tar.TypeDir {
			return &errHostile{fmt.Sprintf("has an entry %q that would replace the layer's root directory", h.Name)}
		}
		hc := *h
		e.dirs["."] = &hc
		return nil
	}
	dir, base := path.Dir(name), path.Base(name)
	if w, ok := strings.CutPrefix(base, ".wh."); ok {
		switch w {
		case ".wh..opq":
			return e.makeOpaque(dir)
		case "", ".", "..":
			return &errHostile{fmt.Sprintf("has a whiteout %q of no file", h.Name)}
		}
		return e.whiteout(dir, w)
	}
	pfd, err := e.parent(dir)
	if err != nil {
		return err
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont: //nolint:staticcheck // TypeRegA is what old tars have
		return e.file(pfd, name, base, h, r)
	case tar.TypeDir:
		switch err := unix.Mkdirat(pfd, base, 0o700); err {
		case nil:
		case unix.EEXIST:
			// A directory stays; anything else is replaced (a whiteout
			// by an opaque directory).
			var st unix.Stat_t
			if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return &pathError{"stat", name, err}
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				fd, err := e.replaceWithDir(pfd, name, base)
				if err != nil {
					return err
				}
				unix.Close(fd)
			}
		default:
			return &pathError{"mkdir", name, err}
		}
		hc := *h
		e.dirs[name] = &hc
		return nil
	case tar.TypeSymlink:
		err := e.retry(pfd, name, base, func() error { return unix.Symlinkat(h.Linkname, pfd, base) })
		if err != nil {
			return &pathError{"symlink", name, err}
		}
		return e.times(pfd, base, name, h, unix.AT_SYMLINK_NOFOLLOW)
	case tar.TypeLink:
		target := path.Clean(h.Linkname)
		tfd, err := e.lookup(path.Dir(target))
		if err != nil {
			return err
		}
		if tfd != e.root {
			defer unix.Close(tfd)
		}
		// No AT_SYMLINK_FOLLOW: a hard link to a symlink is one.
		err = e.retry(pfd, name, base, func() error { return unix.Linkat(tfd, path.Base(target), pfd, base, 0) })
		if err != nil {
			return &pathError{"link", name + " to " + target, err}
		}
		return nil
	case tar.TypeFifo:
		err := e.retry(pfd, name, base, func() error { return unix.Mknodat(pfd, base, unix.S_IFIFO|0o600, 0) })
		if err == nil {
			err = unix.Fchmodat(pfd, base, uint32(h.Mode)&0o7777, 0)
		}
		if err != nil {
			return &pathError{"mkfifo", name, err}
		}
		return e.times(pfd, base, name, h, unix.AT_SYMLINK_NOFOLLOW)
	}
	return &pathError{"unpack", name, fmt.Errorf("entry type %q not supported", h.Typeflag)}
}

// retry runs create; if the name is taken, it replaces what is there.
func (e *extractor) retry(pfd int, name, base string, create func() error) error {
	err := create()
	if err == unix.EEXIST {
		if err = e.clobber(pfd, name, base); err == nil {
			err = create()
		}
	}
	return err
}

// file makes the regular file name: content, mode (after the content:
// writing clears setuid), xattrs, then times.
func (e *extractor) file(pfd int, name, base string, h *tar.Header, r io.Reader) error {
	open := func() (int, error) {
		return unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	}
	fd, err := open()
	if err == unix.EEXIST {
		if err = e.clobber(pfd, name, base); err == nil {
			fd, err = open()
		}
	}
	if err != nil {
		return &pathError{"create", name, err}
	}
	defer unix.Close(fd)
	var n int64
	for {
		m, rerr := r.Read(e.buf)
		if m > 0 {
			if err := writeAll(fd, e.buf[:m]); err != nil {
				return &pathError{"write", name, err}
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr // the tar's: reported as a damaged layer
		}
	}
	if n != h.Size {
		return &pathError{"write", name, io.ErrShortWrite}
	}
	if err := unix.Fchmod(fd, uint32(h.Mode)&0o7777); err != nil {
		return &pathError{"chmod", name, err}
	}
	if err := setXattrs(fd, h); err != nil {
		return &pathError{"setxattr", name, err}
	}
	if err := futimens(fd, timesOf(h, e.now)); err != nil {
		return &pathError{"set the times of", name, err}
	}
	return nil
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// times sets the atime and mtime of name (in pfd) to h's.
func (e *extractor) times(pfd int, base, name string, h *tar.Header, flags int) error {
	ts := timesOf(h, e.now)
	if err := unix.UtimesNanoAt(pfd, base, ts[:], flags); err != nil {
		return &pathError{"set the times of", name, err}
	}
	return nil
}

// timesOf is h's atime and mtime; a tar without an mtime gets now, without
// an atime the mtime (as umoci did).
func timesOf(h *tar.Header, now time.Time) *[2]unix.Timespec {
	m := h.ModTime
	if m.IsZero() {
		m = now
	}
	a := h.AccessTime
	if a.IsZero() {
		a = m
	}
	return &[2]unix.Timespec{{Sec: a.Unix(), Nsec: int64(a.Nanosecond())}, {Sec: m.Unix(), Nsec: int64(m.Nanosecond())}}
}

// futimens is utimensat(fd, NULL, ts, 0): the times of the file fd is open
// on (x/sys has no call for it that keeps nanoseconds).
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
