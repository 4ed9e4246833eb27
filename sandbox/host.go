package sandbox

import (
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/warden-sandbox/warden/userns"
)

// Host is what Resolve needs to know about the machine and the caller. Tests
// use a fake; RealHost reads the running system.
type Host struct {
	UID, GID     int
	User, Home   string
	Cwd          string
	Environ      []string
	SubUID       []userns.IDMap
	SubGID       []userns.IDMap
	HaveHelpers  bool // newuidmap and newgidmap are installed
	Lstat        func(string) (fs.FileInfo, error)
	Stat         func(string) (fs.FileInfo, error)
	Readlink     func(string) (string, error)
	EvalSymlinks func(string) (string, error)
}

// RealHost describes the running system and caller.
func RealHost() (*Host, error) {
	h := &Host{
		UID: os.Getuid(), GID: os.Getgid(), Environ: os.Environ(),
		Lstat: os.Lstat, Stat: os.Stat, Readlink: os.Readlink, EvalSymlinks: filepath.EvalSymlinks,
	}
	var err error
	if h.Cwd, err = os.Getwd(); err != nil {
		return nil, err
	}
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
	if h.SubUID, err = userns.ReadSubIDs("/etc/subuid", h.User, h.UID); err != nil {
		return nil, err
	}
	if h.SubGID, err = userns.ReadSubIDs("/etc/subgid", h.User, h.UID); err != nil {
		return nil, err
	}
	_, herr := userns.FindHelpers()
	h.HaveHelpers = herr == nil
	return h, nil
}
