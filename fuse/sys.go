package fuse

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// overflowID is what the jail sees as the owner of a file whose host owner
// has no id inside (the kernel's default /proc/sys/kernel/overflowuid).
const overflowID = 65534

// IDMap maps Size consecutive ids from Inside (the jail's user namespace) to
// Host, as one line of /proc/PID/uid_map does.
type IDMap struct {
	Inside uint32 `json:"inside"`
	Host   uint32 `json:"host"`
	Size   uint32 `json:"size"`
}

type idMapper []IDMap

// toInside translates a host id into the jail's view; ids the map does not
// cover are shown as uncovered. An empty map translates nothing (the
// server runs in the mount's own user namespace).
func (m idMapper) toInside(host, uncovered uint32) uint32 {
	if len(m) == 0 {
		return host
	}
	for _, e := range m {
		if host >= e.Host && host-e.Host < e.Size {
			return e.Inside + (host - e.Host)
		}
	}
	return uncovered
}

// uncovered is what the jail sees as the owner (or group) of a file whose
// host id the map does not cover: the overflow id when the map covers it
// (a range of subordinate ids), else self, the server's own host id,
// inside. The kernel must be able to map every id the server reports: it
// refuses to delete a file (EOVERFLOW), and to create in a directory, whose
// owner or group it cannot, and under a one-id map 65534 is not mapped.
// Showing such files as the jail user's own decides nothing: every access
// is made on the host by the server, as its own user.
func (m idMapper) uncovered(self uint32) uint32 {
	if _, ok := m.toHost(overflowID); ok || len(m) == 0 {
		return overflowID
	}
	if _, ok := m.toHost(m.toInside(self, overflowID)); ok {
		return m.toInside(self, overflowID)
	}
	return overflowID
}

// toHost translates an id from the jail into the host's; ok is false when
// the map does not cover it.
func (m idMapper) toHost(inside uint32) (uint32, bool) {
	if len(m) == 0 {
		return inside, true
	}
	for _, e := range m {
		if inside >= e.Inside && inside-e.Inside < e.Size {
			return e.Host + (inside - e.Inside), true
		}
	}
	return 0, false
}

// errno turns a system call error into the errno the kernel gets back.
func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}

// dir is a directory fd to run *at calls against: ROOT's own (not closed)
// or one opened beneath it.
type dir struct {
	fd  int
	own bool
}

func (d dir) close() {
	if d.own {
		unix.Close(d.fd)
	}
}

// beneath is how every host-side path below ROOT is resolved: the walk may
// not leave ROOT ("..", absolute paths) nor follow any symlink or magic link.
// The paths come from the server's own tree of names the kernel looked up,
// which are plain directories in the jail's view; were one replaced by a
// symlink on the host meanwhile, the walk fails (ELOOP) instead of following
// it out of ROOT.
const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// openDir opens the directory at rel (relative to ROOT; "" is ROOT) for use
// as the dirfd of *at calls.
func (t *tree) openDir(rel string) (dir, syscall.Errno) {
	if rel == "" {
		return dir{fd: t.rootfd}, 0
	}
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: beneath}
	for try := 0; ; try++ {
		fd, err := unix.Openat2(t.rootfd, rel, &how)
		if err == unix.EAGAIN && try < 16 {
			continue // a rename raced with the walk; the kernel asks us to retry
		}
		if err != nil {
			return dir{}, errno(err)
		}
		return dir{fd: fd, own: true}, 0
	}
}

// statx stats name in d without following a final symlink ("" stats d).
func statx(dirfd int, name string, st *unix.Statx_t) error {
	flags := unix.AT_SYMLINK_NOFOLLOW | unix.AT_STATX_SYNC_AS_STAT
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	return unix.Statx(dirfd, name, flags, unix.STATX_BASIC_STATS|unix.STATX_BTIME, st)
}

// ino is the inode number the jail sees: the host's, with the device mixed in
// for files on other file systems below ROOT (as go-fuse's loopback does).
func (t *tree) ino(st *unix.Statx_t) uint64 {
	dev := unix.Mkdev(st.Dev_major, st.Dev_minor)
	swap := func(d uint64) uint64 { return d<<32 | d>>32 }
	return swap(dev) ^ swap(t.rootDev) ^ st.Ino
}

// gen distinguishes a reused inode number (birth time, when known).
func gen(st *unix.Statx_t) uint64 {
	if st.Mask&unix.STATX_BTIME == 0 || (st.Btime.Sec == 0 && st.Btime.Nsec == 0) {
		return 1
	}
	return uint64(st.Btime.Sec)*1e9 + uint64(st.Btime.Nsec)
}

// fill converts a host stat into the attributes the jail sees, owners
// translated into its ids.
func (t *tree) fill(a *gofuse.Attr, st *unix.Statx_t) {
	a.Ino = t.ino(st)
	a.Size = st.Size
	a.Blocks = st.Blocks
	a.Atime, a.Atimensec = uint64(st.Atime.Sec), st.Atime.Nsec
	a.Mtime, a.Mtimensec = uint64(st.Mtime.Sec), st.Mtime.Nsec
	a.Ctime, a.Ctimensec = uint64(st.Ctime.Sec), st.Ctime.Nsec
	a.Mode = uint32(st.Mode)
	a.Nlink = st.Nlink
	a.Uid = t.uids.toInside(st.Uid, t.uidUncovered)
	a.Gid = t.gids.toInside(st.Gid, t.gidUncovered)
	a.Rdev = uint32(unix.Mkdev(st.Rdev_major, st.Rdev_minor))
	a.Blksize = st.Blksize
}

// procUmask reads the process umask without changing it (umask(2) can only
// set it, and setting it would race with other goroutines' creates).
func procUmask() uint32 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0o022
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return uint32(m)
			}
		}
	}
	return 0o022
}

// fdPath names an fd of this process through /proc, for the calls that have
// no *at form that works on O_PATH fds (xattrs). The magic link is our own
// descriptor, so following it cannot lead anywhere else.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// validName reports whether name is a single path component the kernel may
// send. "." and ".." never reach a node (go-fuse answers them itself); they
// are refused here too, so no request can walk up out of ROOT.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsRune(name, '/')
}
