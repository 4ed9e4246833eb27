package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/userns"
)

// Host is what Resolve needs to know about the machine and the caller. Tests
// use a fake; RealHost reads the running system.
type Host struct {
	UID, GID    int
	User, Home  string
	Cwd         string
	Environ     []string
	SubUID      []userns.IDMap
	SubGID      []userns.IDMap
	HaveHelpers bool // newuidmap and newgidmap are installed
	// Terminal is the device of the caller's terminal when fd 0, 1 or 2
	// is one ("/dev/pts/3"), else "".
	Terminal     string
	loadIDs      func(*Host) error
	Lstat        func(string) (fs.FileInfo, error)
	Stat         func(string) (fs.FileInfo, error)
	Readlink     func(string) (string, error)
	EvalSymlinks func(string) (string, error)
	ReadFile     func(string) ([]byte, error) // nil: host files are not read (tests)
}

// RealHost describes the running system and caller.
func RealHost() (*Host, error) {
	h := &Host{
		UID: os.Getuid(), GID: os.Getgid(), Environ: os.Environ(),
		Lstat: os.Lstat, Stat: os.Stat, Readlink: os.Readlink, EvalSymlinks: filepath.EvalSymlinks, ReadFile: os.ReadFile,
	}
	var err error
	if h.Cwd, err = os.Getwd(); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil, errors.New("the current directory was deleted: cd to a directory that exists and run warden again")
		}
		return nil, fmt.Errorf("the current directory: %w", err)
	}
	h.Terminal = terminal()
	h.Home = os.Getenv("HOME")
	h.User = os.Getenv("USER")
	if u, err := user.LookupId(strconv.Itoa(h.UID)); err == nil {
		h.User = u.Username
		if h.Home == "" {
			h.Home = u.HomeDir
		}
	}
	if h.User == "" {
		h.User = strconv.Itoa(h.UID)
	}
	// Subordinate ids and the setuid helpers matter only for --map=auto
	// and subuid: they are read on first use, not at every start.
	h.loadIDs = func(h *Host) error {
		var err error
		if h.SubUID, err = userns.ReadSubIDs("/etc/subuid", h.User, h.UID); err != nil {
			return err
		}
		if h.SubGID, err = userns.ReadSubIDs("/etc/subgid", h.User, h.UID); err != nil {
			return err
		}
		_, herr := userns.FindHelpers()
		h.HaveHelpers = herr == nil
		return nil
	}
	return h, nil
}

// LoadSubIDs fills SubUID, SubGID and HaveHelpers from the system, once
// (a Host made by a test has them set already).
func (h *Host) LoadSubIDs() error {
	load := h.loadIDs
	h.loadIDs = nil
	if load == nil {
		return nil
	}
	return load(h)
}

// terminal returns the device path of the first of fds 0, 1, 2 that is a
// terminal, "" if none is.
func terminal() string {
	for fd := 0; fd <= 2; fd++ {
		if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
			continue
		}
		p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		if err == nil && (strings.HasPrefix(p, "/dev/pts/") || strings.HasPrefix(p, "/dev/tty")) {
			return p
		}
	}
	return ""
}
