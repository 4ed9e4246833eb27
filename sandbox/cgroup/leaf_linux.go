package cgroup

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoLeaf is returned by FD and AddPID when Setup made no cgroup (mode off,
// or best-effort without a delegated cgroup).
var ErrNoLeaf = errors.New("no cgroup leaf")

// killTimeout bounds the wait for an emptied cgroup after cgroup.kill.
const killTimeout = 5 * time.Second

// Leaf is the cgroup of one jail. Its methods are safe for concurrent use.
type Leaf struct {
	h       *host
	mu      sync.Mutex
	dir     string   // the jail leaf; "" when there is none
	base    string   // the delegated cgroup it is in
	evac    string   // the evacuation leaf we created, "" if none
	enabled []string // controllers we enabled in base/cgroup.subtree_control
	scope   string   // the transient systemd scope we asked for, "" if none
	applied map[string]string
	fd      int
	removed bool
}

// Path is the leaf's directory, "" when there is no cgroup.
func (l *Leaf) Path() string { return l.dir }

// Scope is the transient systemd unit Setup asked for, "" if none.
func (l *Leaf) Scope() string { return l.scope }

// Applied maps every limit name to "enforced", "degraded: reason" or "off".
func (l *Leaf) Applied() map[string]string { return maps.Clone(l.applied) }

// FD returns an O_DIRECTORY descriptor of the leaf for clone3's
// CLONE_INTO_CGROUP (jailprog.Spec.CgroupFD), which starts the child in the
// leaf, so no instruction of the payload ever runs
// outside its limits. The descriptor belongs to the Leaf and is closed by
// Remove; do not close it.
func (l *Leaf) FD() (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dir == "" || l.removed {
		return -1, ErrNoLeaf
	}
	if l.fd < 0 {
		fd, err := unix.Open(l.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, fmt.Errorf("open cgroup %s: %w", l.dir, err)
		}
		l.fd = fd
	}
	return l.fd, nil
}

// AddPID moves a process into the leaf. It is the fallback for kernels (or
// seccomp profiles) without clone3: the process runs outside the limits
// between its start and this call, so the caller should hold it stopped until
// then (the jail's init waits for the parent's go-ahead).
func (l *Leaf) AddPID(pid int) error {
	if l.dir == "" {
		return ErrNoLeaf
	}
	path := filepath.Join(l.dir, "cgroup.procs")
	if err := l.h.writeRetry(path, strconv.Itoa(pid)); err != nil {
		return fmt.Errorf("move process %d to %s: %w", pid, l.dir, err)
	}
	return nil
}

// Stats are the jail's accounting figures. A figure whose file does not exist
// (controller not enabled, older kernel) is 0.
type Stats struct {
	MemoryPeak, MemoryCurrent                               int64 // bytes
	OOM, OOMKill                                            int64 // memory.events oom, oom_kill (+oom_group_kill)
	CPUUsageUsec, CPUUserUsec, CPUSystemUsec, ThrottledUsec int64
	NrThrottled                                             int64 // periods in which the jail was throttled
	PidsPeak, PidsMaxEvents                                 int64 // pids.peak; pids.events max (forks refused)
	IOStat                                                  string
}

// Stats reads memory.peak, memory.current, memory.events, cpu.stat,
// pids.peak, pids.events and io.stat.
func (l *Leaf) Stats() (Stats, error) {
	var st Stats
	if l.dir == "" {
		return st, ErrNoLeaf
	}
	var errs []error
	read := func(file string) []byte {
		data, err := l.h.ops.ReadFile(filepath.Join(l.dir, file))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		return data
	}
	one := func(file string) int64 {
		data := read(file)
		if len(data) == 0 {
			return 0
		}
		n, err := parseInt(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s/%s: %w", l.dir, file, err))
		}
		return n
	}
	st.MemoryPeak = one("memory.peak")
	st.MemoryCurrent = one("memory.current")
	me := parseKeyed(read("memory.events"))
	st.OOM, st.OOMKill = me["oom"], me["oom_kill"]+me["oom_group_kill"]
	cs := parseKeyed(read("cpu.stat"))
	st.CPUUsageUsec, st.CPUUserUsec, st.CPUSystemUsec = cs["usage_usec"], cs["user_usec"], cs["system_usec"]
	st.ThrottledUsec, st.NrThrottled = cs["throttled_usec"], cs["nr_throttled"]
	st.PidsPeak = one("pids.peak")
	st.PidsMaxEvents = parseKeyed(read("pids.events"))["max"]
	st.IOStat = strings.TrimSpace(string(read("io.stat")))
	return st, errors.Join(errs...)
}

// Ending says which limit ended (or held) the jail, from the kernel's own
// counters: "oom" when memory.events counts an OOM kill, "pids-limit" when
// pids.events counts a refused fork, "" otherwise. It is not guessed from an
// exit status; the caller decides how it ranks against a timeout.
func (l *Leaf) Ending() string {
	if l.dir == "" {
		return ""
	}
	st, _ := l.Stats()
	switch {
	case st.OOMKill > 0:
		return "oom"
	case st.PidsMaxEvents > 0:
		return "pids-limit"
	}
	return ""
}

// Kill SIGKILLs every process in the leaf through cgroup.kill (which, unlike
// a walk over cgroup.procs, cannot miss a process forked meanwhile) and waits,
// bounded, until cgroup.events says "populated 0".
func (l *Leaf) Kill() error {
	if l.dir == "" {
		return nil
	}
	err := l.h.ops.WriteFile(filepath.Join(l.dir, "cgroup.kill"), "1")
	switch {
	case errors.Is(err, os.ErrNotExist):
		// Kernels before 5.14 have no cgroup.kill: signal the pids we see,
		// repeatedly, until none is left (or the wait below gives up).
		if err := l.killEach(); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("kill cgroup %s: %w", l.dir, err)
	}
	return l.waitEmpty(killTimeout)
}

func (l *Leaf) killEach() error {
	deadline := time.Now().Add(killTimeout)
	for time.Now().Before(deadline) {
		pids, err := l.allProcs(l.dir)
		if err != nil {
			return fmt.Errorf("kill cgroup %s: %w", l.dir, err)
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func (l *Leaf) allProcs(dir string) ([]int, error) {
	pids, err := l.h.procs(dir)
	if err != nil {
		return nil, err
	}
	subs, _ := l.h.ops.Subdirs(dir)
	for _, s := range subs {
		more, err := l.allProcs(filepath.Join(dir, s))
		if err != nil {
			return nil, err
		}
		pids = append(pids, more...)
	}
	return pids, nil
}

// populated reads cgroup.events.
func (l *Leaf) populated() (bool, error) {
	data, err := l.h.ops.ReadFile(filepath.Join(l.dir, "cgroup.events"))
	if err != nil {
		return false, err
	}
	return parseKeyed(data)["populated"] != 0, nil
}

// waitEmpty waits for "populated 0" in cgroup.events, woken by inotify
// (the kernel signals IN_MODIFY on the file when it changes) and polling
// every 20 ms in case a notification is missed.
func (l *Leaf) waitEmpty(timeout time.Duration) error {
	events := filepath.Join(l.dir, "cgroup.events")
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err == nil {
		defer unix.Close(ino)
		if _, err := unix.InotifyAddWatch(ino, events, unix.IN_MODIFY); err != nil {
			unix.Close(ino)
			ino = -1
		}
	} else {
		ino = -1
	}
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 4096)
	for {
		busy, err := l.populated()
		if err != nil {
			return fmt.Errorf("wait for cgroup %s to empty: %w", l.dir, err)
		}
		if !busy {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("wait for cgroup %s to empty: still populated after %v", l.dir, timeout)
		}
		if ino < 0 {
			time.Sleep(min(left, 20*time.Millisecond))
			continue
		}
		fds := []unix.PollFd{{Fd: int32(ino), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(min(left, 20*time.Millisecond)/time.Millisecond)+1); err != nil && err != unix.EINTR {
			return fmt.Errorf("wait for cgroup %s to empty: poll: %w", l.dir, err)
		}
		for {
			if n, _ := unix.Read(ino, buf); n <= 0 {
				break
			}
		}
	}
}

// Remove kills what is left in the leaf, removes it, and undoes the
// evacuation if Setup made one and no other jail uses the base any more. It
// can be called more than once. A transient scope is not stopped here: it
// holds warden itself, and systemd removes it when warden exits.
func (l *Leaf) Remove() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.removed {
		return nil
	}
	var errs []error
	if l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
	if l.dir != "" {
		if err := l.Kill(); err != nil {
			errs = append(errs, err)
		}
		if err := l.rmdir(l.dir); err != nil {
			errs = append(errs, err)
		}
	}
	if l.evac != "" {
		unlock := lockDir(l.base)
		errs = append(errs, l.restore())
		unlock()
	}
	l.removed = true
	return errors.Join(errs...)
}

// rmdir removes a cgroup directory, retrying EBUSY for a while: it can
// follow "populated 0" briefly while the last task is released.
func (l *Leaf) rmdir(dir string) error {
	var err error
	for i := 0; i < 200; i++ {
		err = l.h.ops.Rmdir(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}

// restore undoes evacuate when the base holds nothing but the evacuation leaf:
// it disables the controllers Setup enabled (only then may processes live in
// the base again), moves the processes back and removes the leaf. While other
// jails still use the base it leaves everything as it is.
//
// Preconditions:
//   - The caller holds lockDir(l.base).
func (l *Leaf) restore() error {
	subs, err := l.h.ops.Subdirs(l.base)
	if err != nil {
		return fmt.Errorf("list %s: %w", l.base, err)
	}
	if slices.ContainsFunc(subs, func(s string) bool { return s != evacName }) {
		return nil
	}
	subtree := filepath.Join(l.base, "cgroup.subtree_control")
	for _, c := range slices.Backward(l.enabled) {
		if err := l.h.writeRetry(subtree, "-"+c); err != nil {
			return fmt.Errorf("disable the %s controller in %s: %w", c, l.base, err)
		}
	}
	pids, err := l.h.procs(l.evac)
	if err != nil {
		return fmt.Errorf("read %s/cgroup.procs: %w", l.evac, err)
	}
	for _, pid := range pids {
		err := l.h.writeRetry(filepath.Join(l.base, "cgroup.procs"), strconv.Itoa(pid))
		if err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("move process %d back to %s: %w", pid, l.base, err)
		}
	}
	return l.rmdir(l.evac)
}
