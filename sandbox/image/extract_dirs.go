package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// The extractor's walk of the layer's directories, one fd at a time.

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
