package writeset

import (
	"golang.org/x/sys/unix"
)

// The lower side of an overlay: a stack of lower directories, newest
// first, which may themselves hold whiteouts and opaque directories (image
// layers). A merged lower directory is the list of the layers'
// directories that take part in it, newest first, as the kernel builds it
// in ovl_lookup: a whiteout stops the lookup, a non-directory hides all
// below it, a directory marked opaque "y" is the last one merged.

// ldir is one layer's directory in a merged lower directory.
type ldir struct {
	fd int  // O_RDONLY; O_PATH when we may search but not list it
	x  bool // marked opaque "x": may hold xattr whiteouts
}

func closeDirs(ds []ldir) {
	for _, d := range ds {
		unix.Close(d.fd)
	}
}

// lowerHit is what the lowers show at a name.
type lowerHit struct {
	st    unix.Stat_t
	dirfd int    // the lower directory that holds the entry (not owned)
	dirs  []ldir // for a directory: its merged lower directories (owned by the caller)
}

// lookup finds name in the merged lower directory parts. Each layer is
// asked with fstatat(AT_SYMLINK_NOFOLLOW) from the fd of a directory that
// was itself reached without following symlinks, so a symlink anywhere on
// the way makes the path absent (as a non-directory hides what is below).
func lookup(parts []ldir, name string) (hit lowerHit, found bool) {
	for _, p := range parts {
		var st unix.Stat_t
		if lstatAt(p.fd, name, &st) != nil {
			continue // absent from this layer (or not searchable: the same for us)
		}
		if isWhiteoutDev(&st) || isXattrWhiteout(p.fd, name, &st, p.x, false) {
			break
		}
		if found && !isDir(&st) {
			break // a non-directory under a directory is hidden, and so is all below it
		}
		if !found {
			found, hit.st, hit.dirfd = true, st, p.fd
			if !isDir(&st) {
				break
			}
		}
		d, opaque := openLowerDir(p.fd, name, &st)
		if d.fd >= 0 {
			hit.dirs = append(hit.dirs, d)
		}
		if opaque {
			break
		}
	}
	return hit, found
}

// openLowerDir opens a lower directory, stat'ed as st, and tells whether
// it is opaque. A directory we may not read is opened O_PATH (we can still
// look names up in it, as the overlay could); a mount point below a lower
// root (RESOLVE_NO_XDEV refuses it; the overlay shows the directory under
// it, which we cannot reach) gives fd -1: present, but empty for us.
func openLowerDir(dirfd int, name string, st *unix.Stat_t) (ldir, bool) {
	fd, err := openAt(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		if fd, err = openAt(dirfd, name, unix.O_PATH|unix.O_DIRECTORY, 0); err != nil {
			return ldir{fd: -1}, false
		}
	}
	var got unix.Stat_t
	if unix.Fstat(fd, &got) != nil || !sameInode(&got, st) {
		unix.Close(fd)
		return ldir{fd: -1}, false
	}
	op := opaqueOf(fd)
	return ldir{fd: fd, x: op == "x"}, op == "y"
}

// unionNames lists the names in any of the directories, once each (some
// may be whiteouts or hidden: lookup tells).
func unionNames(dirs []ldir) []string {
	if len(dirs) == 1 {
		names, _ := readNames(dirs[0].fd)
		return names
	}
	seen := map[string]bool{}
	var out []string
	for _, d := range dirs {
		names, err := readNames(d.fd)
		if err != nil {
			continue // O_PATH: not listable
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

// treeSize is the total size of the files visible below the merged lower
// directory dirs (which stay the caller's), walked with an explicit stack
// no deeper than MaxDepth.
func treeSize(dirs []ldir) int64 {
	type sframe struct {
		dirs  []ldir
		names []string
		depth int
	}
	stack := []sframe{{dirs: dirs, names: unionNames(dirs)}}
	var total int64
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if len(top.names) == 0 {
			if len(stack) > 1 {
				closeDirs(top.dirs)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		name := top.names[0]
		top.names = top.names[1:]
		hit, ok := lookup(top.dirs, name)
		if !ok {
			continue
		}
		total += fileSize(&hit.st)
		if len(hit.dirs) > 0 && top.depth+1 <= MaxDepth {
			stack = append(stack, sframe{dirs: hit.dirs, names: unionNames(hit.dirs), depth: top.depth + 1})
		} else {
			closeDirs(hit.dirs)
		}
	}
	return total
}
