package image

import (
	"archive/tar"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
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

// rootlessXattr is the xattr that keeps an entry's owner, umoci's (from
// github.com/rootless-containers/proto): the protobuf message
//
//	message Resource { uint32 uid = 1; uint32 gid = 2; }
//
// with 0 (root) written as noopID, and no xattr for 0:0. As neither field
// is ever 0, the encoding is always both fields, each a tag byte (field
// number << 3 | wire type 0, varint) then the value as a varint: 0x08
// varint(uid) 0x10 varint(gid). It is encoded here by hand, without the
// protobuf runtime (whose initialization every warden command would pay).
const rootlessXattr = "user.rootlesscontainers"

// noopID is rootlesscontainers.NoopID: "no owner recorded" (uint32(-1)).
const noopID = ^uint32(0)

// rootlessValue is the value of rootlessXattr for an image owner uid:gid;
// nil for 0:0.
func rootlessValue(uid, gid int) []byte {
	if uid == 0 && gid == 0 {
		return nil
	}
	u, g := uint32(uid), uint32(gid)
	if uid == 0 {
		u = noopID
	}
	if gid == 0 {
		g = noopID
	}
	b := binary.AppendUvarint([]byte{0x08}, uint64(u))
	b = append(b, 0x10)
	return binary.AppendUvarint(b, uint64(g))
}

// setXattrs sets the xattrs of h that a layer keeps on the file or
// directory fd: its user.* PAX xattrs (user.overlay.* escaped), and the
// owner in rootlessXattr. A file system without user xattrs loses them
// (umoci warned and went on).
func setXattrs(fd int, h *tar.Header) error {
	set := func(name string, value []byte) error {
		err := unix.Fsetxattr(fd, name, value, 0)
		if err == unix.ENOTSUP {
			return nil
		}
		return err
	}
	for k, v := range h.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || !strings.HasPrefix(name, "user.") || name == rootlessXattr {
			continue // security.*, trusted.*, system.* (ACLs) are not kept
		}
		if sub, ok := strings.CutPrefix(name, "user.overlay."); ok {
			name = "user.overlay.overlay." + sub
		}
		if err := set(name, []byte(v)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if v := rootlessValue(h.Uid, h.Gid); v != nil {
		if err := set(rootlessXattr, v); err != nil {
			return fmt.Errorf("%s: %w", rootlessXattr, err)
		}
	}
	return nil
}

// whiteout makes ".wh.w" in dir: w is removed and, unless an opaque dir
// of this layer holds it, a whiteout made in its place.
func (e *extractor) whiteout(dir, w string) error {
	pfd, err := e.parent(dir)
	if err != nil {
		return err
	}
	p := path.Join(dir, w)
	if err := e.removeEntry(pfd, p, w); err != nil {
		return err
	}
	for q := dir; ; q = path.Dir(q) {
		if e.opaque[q] {
			return nil // the opaque dir hides it already
		}
		if q == "." {
			break
		}
	}
	if err := unix.Mknodat(pfd, w, unix.S_IFCHR, 0); err != nil {
		return &pathError{"make the whiteout", p, err}
	}
	e.whiteouts[p] = true
	return nil
}

// makeOpaque marks dir opaque (".wh..wh..opq"), making it if need be, and
// removes the whiteouts this layer made in it: overlayfs lists those in an
// opaque dir but will not open them.
func (e *extractor) makeOpaque(dir string) error {
	fd := e.root
	if dir != "." {
		pfd, err := e.parent(path.Dir(dir))
		if err != nil {
			return err
		}
		base := path.Base(dir)
		if fd, err = e.childDir(pfd, dir, base, true); err != nil {
			return err
		}
		defer unix.Close(fd)
	}
	if err := unix.Fsetxattr(fd, "user.overlay.opaque", []byte("y"), 0); err != nil {
		return &pathError{"mark opaque", dir, err}
	}
	e.opaque[dir] = true
	for w := range e.whiteouts {
		if dir == "." || strings.HasPrefix(w, dir+"/") {
			wfd, err := e.lookup(path.Dir(w))
			if err != nil {
				return err
			}
			err = unix.Unlinkat(wfd, path.Base(w), 0)
			if wfd != e.root {
				unix.Close(wfd)
			}
			if err != nil && err != unix.ENOENT {
				return &pathError{"remove the whiteout", w, err}
			}
			delete(e.whiteouts, w)
		}
	}
	return nil
}

// parent returns an fd of the directory dir, made (with its parents) if
// missing. The fd belongs to the extractor: the caller does not close it,
// and it is valid until the next call of parent, lookup or a removal.
func (e *extractor) parent(dir string) (int, error) {
	if dir == "." {
		return e.root, nil
	}
	if e.cacheFd >= 0 && e.cachePath == dir {
		return e.cacheFd, nil
	}
	fd, err := e.openDir(dir)
	if err != nil {
		// Missing, not a directory, or a symlink on the way: one
		// component at a time.
		fd = e.root
		parts := strings.Split(dir, "/")
		for i, c := range parts {
			nfd, cerr := e.childDir(fd, strings.Join(parts[:i+1], "/"), c, true)
			if fd != e.root {
				unix.Close(fd)
			}
			if cerr != nil {
				return -1, cerr
			}
			fd = nfd
		}
	}
	e.dropCache()
	e.cachePath, e.cacheFd = dir, fd
	return fd, nil
}

// lookup returns a new fd (the caller closes it, unless it is e.root) of
// the existing directory dir, refusing symlinks on the way.
func (e *extractor) lookup(dir string) (int, error) {
	if dir == "." {
		return e.root, nil
	}
	if fd, err := e.openDir(dir); err == nil {
		return fd, nil
	}
	fd := e.root
	parts := strings.Split(dir, "/")
	for i, c := range parts {
		nfd, err := e.childDir(fd, strings.Join(parts[:i+1], "/"), c, false)
		if fd != e.root {
			unix.Close(fd)
		}
		if err != nil {
			return -1, err
		}
		fd = nfd
	}
	return fd, nil
}

// openDir opens the directory dir of the layer in one call, failing on a
// symlink anywhere on the way.
func (e *extractor) openDir(dir string) (int, error) {
	for {
		fd, err := unix.Openat2(e.root, dir, &unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		})
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// childDir opens the directory base in pfd (p is its path in the layer).
// If create, a missing one is made, and one that is not a directory is
// replaced by one: a whiteout of this layer by an opaque directory (what
// overlayfs makes of a deleted directory made again), anything else but a
// symlink by a plain one. A symlink is refused.
func (e *extractor) childDir(pfd int, p, base string, create bool) (int, error) {
	open := func() (int, error) {
		return unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	fd, err := open()
	if err == nil {
		return fd, nil
	}
	if !create {
		if err == unix.ELOOP || err == unix.ENOTDIR {
			var st unix.Stat_t
			if unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				return -1, &errHostile{fmt.Sprintf("has an entry that goes through the symlink %q", p)}
			}
		}
		return -1, &pathError{"open", p, err}
	}
	switch err {
	case unix.ENOENT:
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return -1, &pathError{"mkdir", p, err}
		}
		if _, ok := e.dirs[p]; !ok {
			e.dirs[p] = nil
		}
		if fd, err = open(); err != nil {
			return -1, &pathError{"open", p, err}
		}
		return fd, nil
	case unix.ENOTDIR, unix.ELOOP:
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return -1, &pathError{"stat", p, err}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			return -1, &errHostile{fmt.Sprintf("has an entry that goes through the symlink %q", p)}
		case unix.S_IFDIR:
			return -1, &pathError{"open", p, err}
		}
		return e.replaceWithDir(pfd, p, base)
	}
	return -1, &pathError{"open", p, err}
}

// replaceWithDir replaces what is at p (base in pfd) with a directory,
// and returns an fd of it. If it was a whiteout this layer made, the
// directory is opaque: the layer deleted what the layers below have
// there, then made it again.
func (e *extractor) replaceWithDir(pfd int, p, base string) (int, error) {
	wasWhiteout := e.whiteouts[p]
	if err := e.clobber(pfd, p, base); err != nil {
		return -1, err
	}
	if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
		return -1, &pathError{"mkdir", p, err}
	}
	if _, ok := e.dirs[p]; !ok {
		e.dirs[p] = nil
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &pathError{"open", p, err}
	}
	if wasWhiteout {
		if err := unix.Fsetxattr(fd, "user.overlay.opaque", []byte("y"), 0); err != nil {
			unix.Close(fd)
			return -1, &pathError{"mark opaque", p, err}
		}
		e.opaque[p] = true
	}
	return fd, nil
}

// clobber removes what is at p (base in pfd), to be replaced.
func (e *extractor) clobber(pfd int, p, base string) error {
	return e.removeEntry(pfd, p, base)
}

// removeEntry removes p (base in pfd), a directory with its content, and
// forgets what the extractor knew of it. A missing p is no error.
func (e *extractor) removeEntry(pfd int, p, base string) error {
	switch err := unix.Unlinkat(pfd, base, 0); err {
	case unix.ENOENT:
		return nil // most whiteouts: what they delete is in a lower layer
	case nil:
		delete(e.whiteouts, p) // not a directory: nothing below it
		return nil
	case unix.EISDIR, unix.EPERM:
		if err := removeAt(pfd, base); err != nil && err != unix.ENOENT {
			return &pathError{"remove", p, err}
		}
	default:
		return &pathError{"remove", p, err}
	}
	for _, m := range []map[string]bool{e.whiteouts, e.opaque} {
		for k := range m {
			if k == p || strings.HasPrefix(k, p+"/") {
				delete(m, k)
			}
		}
	}
	for k := range e.dirs {
		if k == p || strings.HasPrefix(k, p+"/") {
			delete(e.dirs, k)
		}
	}
	if e.cacheFd >= 0 && (e.cachePath == p || strings.HasPrefix(e.cachePath, p+"/")) {
		e.dropCache()
	}
	return nil
}

func (e *extractor) dropCache() {
	if e.cacheFd >= 0 {
		unix.Close(e.cacheFd)
	}
	e.cachePath, e.cacheFd = "", -1
}

// finish gives every directory its mode, xattrs and times, deepest first.
func (e *extractor) finish() error {
	e.dropCache()
	dirs := make([]string, 0, len(e.dirs)+1)
	for d := range e.dirs {
		if d != "." {
			dirs = append(dirs, d)
		}
	}
	sort.Slice(dirs, func(i, j int) bool {
		di, dj := strings.Count(dirs[i], "/"), strings.Count(dirs[j], "/")
		if di != dj {
			return di > dj
		}
		return dirs[i] < dirs[j]
	})
	dirs = append(dirs, ".")
	for _, d := range dirs {
		fd, err := e.lookup(d)
		if err != nil {
			return err
		}
		err = e.finishDir(fd, d, e.dirs[d])
		if fd != e.root {
			unix.Close(fd)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (e *extractor) finishDir(fd int, d string, h *tar.Header) error {
	mode := uint32(0o755) // a parent the tar has no entry for
	if h != nil {
		mode = uint32(h.Mode) & 0o7777
		if err := setXattrs(fd, h); err != nil {
			return &pathError{"setxattr", d, err}
		}
	}
	if d == "." {
		mode |= 0o700
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return &pathError{"chmod", d, err}
	}
	if h != nil {
		if err := futimens(fd, timesOf(h, e.now)); err != nil {
			return &pathError{"set the times of", d, err}
		}
	}
	return nil
}

// removeAt removes name in the directory dirfd, a directory with all it
// holds, making directories writable on its way down (layers have
// read-only ones). It never follows a symlink.
func removeAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.EPERM
	}
	if st.Mode&0o700 != 0o700 {
		if err := unix.Fchmodat(dirfd, name, 0o700, 0); err != nil {
			return err
		}
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	err = removeChildren(fd)
	unix.Close(fd)
	if err != nil {
		return err
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

// removeChildren removes everything in the directory fd: it reads all
// the names first (removing entries while reading a directory may skip
// some), then removes them.
func removeChildren(fd int) error {
	buf := make([]byte, 8<<10)
	var names []string
	for {
		n, err := unix.ReadDirent(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	for _, c := range names {
		if err := removeAt(fd, c); err != nil && err != unix.ENOENT {
			return err
		}
	}
	return nil
}

// removeAll removes the file or directory tree p (see removeAt). A missing
// p is no error.
func removeAll(p string) error {
	dir, base := path.Split(p)
	if dir == "" {
		dir = "."
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return &pathError{"open", dir, err}
	}
	defer unix.Close(fd)
	if err := removeAt(fd, base); err != nil && err != unix.ENOENT {
		return &pathError{"remove", p, err}
	}
	return nil
}
