package writeset

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Diff compares the overlay upper directory upper (an fd; Diff neither
// closes nor moves it) with the lower directories lowers (host paths,
// newest first) and returns the write-set: what the jail sees now against
// what it saw before it ran. The roots themselves are never reported.
//
//   - created: in the upper and not visible in the lowers (absent, or
//     hidden by a lower whiteout or opaque directory, or below a path
//     that changed type). Everything created below a created directory is
//     listed too.
//   - modified: in the upper and visible in the lowers, and different: a
//     regular file's size, content or permission bits, a symlink's
//     target, a directory's permission bits (DetailType when the type
//     changed). A copy-up that changed nothing (an open for writing, a
//     chmod to the same mode, a touch, a file deleted and written again
//     with the same content) is not reported.
//   - deleted: a whiteout over a visible lower entry, or a visible lower
//     entry below an opaque upper directory that the upper does not hold
//     again; one entry per deleted tree, with the lower's type and size.
//
// The overlay of a user namespace has no redirect_dir: a renamed file is
// a created new path and a deleted old one (and mv of a lower directory
// copies it: a created tree and a deleted one).
//
// A lower file that cannot be read compares as different. When a limit is
// reached, or on an error, Diff returns the entries found so far with the
// error; the limit error wraps ErrLimit.
func Diff(upper int, lowers []string) (Set, error) {
	d := &differ{}
	roots := make([]ldir, 0, len(lowers))
	for _, l := range lowers {
		fd, err := unix.Open(l, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			closeDirs(roots)
			return d.result(), fmt.Errorf("open lower %s: %w", l, err)
		}
		roots = append(roots, ldir{fd: fd, x: opaqueOf(fd) == "x"})
	}
	d.pending = dstate{lower: roots}
	defer d.close()
	err := walk(upper, d)
	if err == nil {
		err = d.limit
	}
	return d.result(), err
}

// dstate is what differ knows about an upper directory being walked.
type dstate struct {
	lower  []ldir          // the merged lower directory at the same path (nil: none)
	opaque bool            // marked opaque "y": lower entries not in the upper are deleted
	x      bool            // marked opaque "x": may hold xattr whiteouts
	names  map[string]bool // an opaque directory's upper names
}

type differ struct {
	set     Set
	n       int
	limit   error
	stack   []dstate
	pending dstate // for the directory walk is about to enter
	buf     [2][]byte
}

func (d *differ) close() {
	for _, s := range d.stack {
		closeDirs(s.lower)
	}
	closeDirs(d.pending.lower)
	d.stack, d.pending = nil, dstate{}
}

func (d *differ) result() Set {
	s := d.set
	for _, l := range []*[]Entry{&s.Created, &s.Modified, &s.Deleted} {
		if *l == nil {
			*l = []Entry{}
		}
		slices.SortFunc(*l, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	}
	return s
}

func (d *differ) add(e Entry) error {
	if d.n >= MaxEntries {
		return fmt.Errorf("%w: more than %d entries", ErrLimit, MaxEntries)
	}
	d.n++
	switch e.Kind {
	case Created:
		d.set.Created = append(d.set.Created, e)
	case Modified:
		d.set.Modified = append(d.set.Modified, e)
	default:
		d.set.Deleted = append(d.set.Deleted, e)
	}
	return nil
}

func (d *differ) enter(parent, f *frame) error {
	s := d.pending
	d.pending = dstate{}
	op := opaqueOf(f.fd)
	s.x = op == "x"
	// The kernel never makes the overlay root opaque (ovl_get_root).
	s.opaque = op == "y" && parent != nil
	if s.opaque && len(s.lower) > 0 {
		s.names = make(map[string]bool, len(f.names))
		for _, n := range f.names {
			s.names[n] = true
		}
	}
	d.stack = append(d.stack, s)
	return nil
}

func (d *differ) leave(f *frame) error {
	s := d.stack[len(d.stack)-1]
	d.stack = d.stack[:len(d.stack)-1]
	defer closeDirs(s.lower)
	if !s.opaque || len(s.lower) == 0 {
		return nil
	}
	// An opaque upper directory hides the whole lower one: what it does
	// not hold again is deleted.
	for _, name := range unionNames(s.lower) {
		if s.names[name] {
			continue
		}
		hit, ok := lookup(s.lower, name)
		if !ok {
			continue
		}
		err := d.add(Entry{Path: join(f.path, name), Kind: Deleted, Type: typeOf(&hit.st), Size: d.removed(&hit)})
		if err != nil {
			return err
		}
	}
	return nil
}

// removed is the size a deletion of hit removes, and closes hit's dirs.
func (d *differ) removed(hit *lowerHit) int64 {
	defer closeDirs(hit.dirs)
	if isDir(&hit.st) {
		return treeSize(hit.dirs)
	}
	return fileSize(&hit.st)
}

func (d *differ) entry(f *frame, name string, st *unix.Stat_t) (bool, error) {
	s := &d.stack[len(d.stack)-1]
	p := join(f.path, name)
	hit, found := lookup(s.lower, name)
	if isWhiteoutDev(st) || isXattrWhiteout(f.fd, name, st, s.x, true) {
		if !found {
			return false, nil // a whiteout over nothing changes nothing
		}
		return false, d.add(Entry{Path: p, Kind: Deleted, Type: typeOf(&hit.st), Size: d.removed(&hit)})
	}
	e := Entry{Path: p, Type: typeOf(st), Size: fileSize(st)}
	switch {
	case !found:
		e.Kind = Created
	case st.Mode&unix.S_IFMT != hit.st.Mode&unix.S_IFMT:
		e.Kind, e.Detail = Modified, DetailType
		closeDirs(hit.dirs)
		hit.dirs = nil // what is below a new directory is new
	default:
		e.Kind, e.Detail = Modified, d.compare(f.fd, name, st, &hit)
	}
	if e.Detail != "" || e.Kind == Created {
		if err := d.add(e); err != nil {
			closeDirs(hit.dirs)
			return false, err
		}
	}
	if !isDir(st) {
		closeDirs(hit.dirs)
		return false, nil
	}
	if f.depth+1 > MaxDepth {
		closeDirs(hit.dirs)
		d.limit = fmt.Errorf("%w: %s is deeper than %d levels", ErrLimit, p, MaxDepth)
		return false, nil
	}
	d.pending = dstate{lower: hit.dirs}
	return true, nil
}

// compare tells what differs between an upper entry and the lower one of
// the same type: "", DetailContent, DetailMode or DetailContentMode.
func (d *differ) compare(dirfd int, name string, st *unix.Stat_t, hit *lowerHit) string {
	mode := st.Mode&0o7777 != hit.st.Mode&0o7777
	content := false
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		content = st.Size != hit.st.Size || !d.sameContent(dirfd, name, st, hit)
	case unix.S_IFLNK:
		mode = false // a symlink's mode means nothing
		a, errA := readlink(dirfd, name)
		b, errB := readlink(hit.dirfd, name)
		content = errA != nil || errB != nil || a != b
	case unix.S_IFCHR, unix.S_IFBLK:
		content = st.Rdev != hit.st.Rdev
	}
	switch {
	case content && mode:
		return DetailContentMode
	case content:
		return DetailContent
	case mode:
		return DetailMode
	}
	return ""
}

// sameContent streams both files, of equal size, and stops at the first
// difference. A file it cannot read counts as different.
func (d *differ) sameContent(dirfd int, name string, st *unix.Stat_t, hit *lowerHit) bool {
	u, err := openRegular(dirfd, name, st, true)
	if err != nil {
		return false
	}
	defer unix.Close(u)
	l, err := openRegular(hit.dirfd, name, &hit.st, false)
	if err != nil {
		return false
	}
	defer unix.Close(l)
	if d.buf[0] == nil {
		d.buf = [2][]byte{make([]byte, 128<<10), make([]byte, 128<<10)}
	}
	for off := int64(0); off < st.Size; {
		n := int(min(int64(len(d.buf[0])), st.Size-off))
		if preadFull(u, d.buf[0][:n], off) != nil || preadFull(l, d.buf[1][:n], off) != nil {
			return false
		}
		if !bytes.Equal(d.buf[0][:n], d.buf[1][:n]) {
			return false
		}
		off += int64(n)
	}
	return true
}

// preadFull fills b from fd at off; a short file is an error.
func preadFull(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pread(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.EIO
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// readlink reads a symlink's target without following it. Targets are
// shorter than PATH_MAX.
func readlink(dirfd int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
