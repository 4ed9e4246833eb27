package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// fsOps are the file operations on cgroupfs. The real ones are in realOps;
// tests substitute a fake kernel over a directory tree.
type fsOps interface {
	ReadFile(path string) ([]byte, error)
	WriteFile(path, value string) error
	Mkdir(path string) error
	Rmdir(path string) error
	// Writable reports access(path, W_OK) for the calling process.
	Writable(path string) bool
	// Subdirs lists the child cgroups of dir.
	Subdirs(dir string) ([]string, error)
}

// host is everything Setup and Probe read from the machine. realHost fills it
// for the running process; tests fill it with fakes.
type host struct {
	ops            fsOps
	procSelfCgroup string // /proc/self/cgroup
	procCgroups    string // /proc/cgroups
	meminfo        string // /proc/meminfo
	mounts         func() ([]*mountinfo.Info, error)
	getenv         func(string) string
	uid, pid       int
	// startScope asks the systemd user manager at the bus address for a
	// transient scope holding pid with Delegate=yes.
	startScope func(ctx context.Context, addr, unit string, pid int) error
}

func realHost() *host {
	return &host{
		ops:            realOps{},
		procSelfCgroup: "/proc/self/cgroup",
		procCgroups:    "/proc/cgroups",
		meminfo:        "/proc/meminfo",
		mounts: func() ([]*mountinfo.Info, error) {
			return mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup2", "cgroup"))
		},
		getenv:     os.Getenv,
		uid:        os.Getuid(),
		pid:        os.Getpid(),
		startScope: startScopeDBus,
	}
}

// realOps operate on the kernel's cgroupfs.
type realOps struct{}

func (realOps) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

func (realOps) WriteFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	// cgroupfs takes each write(2) as one command; one write per value.
	_, err = f.Write([]byte(value))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (realOps) Mkdir(path string) error { return os.Mkdir(path, 0o755) }

func (realOps) Rmdir(path string) error {
	if err := unix.Rmdir(path); err != nil {
		return &os.PathError{Op: "rmdir", Path: path, Err: err}
	}
	return nil
}

func (realOps) Writable(path string) bool { return unix.Access(path, unix.W_OK) == nil }

func (realOps) Subdirs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// location is where the caller sits in the cgroup2 hierarchy.
type location struct {
	Mode  string // "unified", "hybrid", "v1" or "none"
	Mount string // the cgroup2 mount point ("" when none)
	Own   string // the caller's cgroup, relative to the mount ("/" for the root)
	Dir   string // Mount joined with Own
}

// locate finds the cgroup2 mount and the caller's cgroup in it.
func (h *host) locate() (location, error) {
	mounts, err := h.mounts()
	if err != nil {
		return location{Mode: "none"}, fmt.Errorf("read mountinfo: %w", err)
	}
	var v2 *mountinfo.Info
	v1 := false
	for _, m := range mounts {
		switch m.FSType {
		case "cgroup":
			v1 = true
		case "cgroup2":
			// Prefer the standard places: /sys/fs/cgroup (unified) and then
			// /sys/fs/cgroup/unified (hybrid); another mount only if neither.
			if v2 == nil || rank(m.Mountpoint) < rank(v2.Mountpoint) {
				v2 = m
			}
		}
	}
	if v2 == nil {
		mode := "none"
		if v1 {
			mode = "v1"
		}
		return location{Mode: mode}, fmt.Errorf("find cgroup2 mount: %w", ErrNoCgroup2)
	}
	loc := location{Mode: "unified", Mount: v2.Mountpoint}
	if v2.Mountpoint != "/sys/fs/cgroup" || v1 {
		loc.Mode = "hybrid"
	}
	data, err := h.ops.ReadFile(h.procSelfCgroup)
	if err != nil {
		return loc, fmt.Errorf("read own cgroup: %w", err)
	}
	own, err := parseProcCgroup(data)
	if err != nil {
		return loc, err
	}
	// A cgroup2 mount made inside a cgroup namespace, or a bind mount, shows
	// only the subtree below its root.
	if root := v2.Root; root != "" && root != "/" {
		rel, ok := strings.CutPrefix(own, root)
		if !ok || (rel != "" && !strings.HasPrefix(rel, "/")) {
			return loc, fmt.Errorf("find own cgroup %s: not below the root %s of the cgroup2 mount %s", own, root, v2.Mountpoint)
		}
		own = "/" + strings.TrimPrefix(rel, "/")
	}
	loc.Own = own
	loc.Dir = filepath.Join(v2.Mountpoint, own)
	return loc, nil
}

func rank(mountpoint string) int {
	switch mountpoint {
	case "/sys/fs/cgroup":
		return 0
	case "/sys/fs/cgroup/unified":
		return 1
	}
	return 2
}

// delegated reports whether dir is a cgroup the caller may manage: it can
// create children in it, move processes into it and enable controllers for
// its children. These are exactly the files systemd chowns for Delegate=yes.
func (h *host) delegated(dir string) bool {
	return h.ops.Writable(dir) &&
		h.ops.Writable(filepath.Join(dir, "cgroup.procs")) &&
		h.ops.Writable(filepath.Join(dir, "cgroup.subtree_control"))
}

// controllers reads a list file (cgroup.controllers, cgroup.subtree_control).
func (h *host) controllers(dir, file string) ([]string, error) {
	data, err := h.ops.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil, err
	}
	return parseList(data), nil
}

// whyMissingAtRoot explains why the cgroup2 root lacks a controller, from
// /proc/cgroups: bound to a v1 hierarchy, disabled at boot, or not built in.
func (h *host) whyMissingAtRoot(loc location, controller string) (reason, fix string) {
	data, _ := h.ops.ReadFile(h.procCgroups)
	hs := v1Hierarchies(data)
	e, ok := hs[v1Name(controller)]
	switch {
	case ok && e[1] == 0:
		return fmt.Sprintf("the %s controller is disabled on the kernel command line (cgroup_disable=%s)", controller, v1Name(controller)),
			"remove cgroup_disable=" + v1Name(controller) + " from the kernel command line"
	case ok && e[0] != 0:
		return fmt.Sprintf("the %s controller is attached to a cgroup v1 hierarchy, not to cgroup2 at %s (hybrid mode)", controller, loc.Mount), fixUnified
	case ok || len(hs) == 0:
		return fmt.Sprintf("the %s controller is not available at the cgroup2 root %s", controller, loc.Mount), fixParent + fixDropIn
	}
	return fmt.Sprintf("this kernel has no %s controller", controller), fixKernel
}

// swapless reports whether the host has no swap at all, so that a missing
// memory.swap.max (no swap accounting) cannot let a jail swap.
func (h *host) swapless() bool {
	data, err := h.ops.ReadFile(h.meminfo)
	return err == nil && swapTotal(data) == 0
}

// writeRetry writes value to a cgroup file, retrying EBUSY: the kernel
// returns it transiently while a migration out of the cgroup settles (crun
// retries up to 1000 times for the same reason).
func (h *host) writeRetry(path, value string) error {
	var err error
	for i := range 100 {
		if err = h.ops.WriteFile(path, value); !errors.Is(err, unix.EBUSY) {
			return err
		}
		time.Sleep(time.Duration(min(i+1, 10)) * 100 * time.Microsecond) // at most ~0.1 s in all
	}
	return err
}

// procs lists the pids in a cgroup.procs file.
func (h *host) procs(dir string) ([]int, error) {
	data, err := h.ops.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// validName reports whether name can be a cgroup directory and a systemd unit
// name prefix.
func validName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 200 {
		return false
	}
	return !slices.ContainsFunc([]byte(name), func(c byte) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.')
	})
}
