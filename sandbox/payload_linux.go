package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/seccomp"
)

// lookPath finds argv0 in the jail's PATH (from the plan's environment, not
// stage-2's own). A file that exists but is not executable is EACCES, so it
// becomes exit 126 rather than 127.
func lookPath(argv0 string, env []string) (string, error) {
	if strings.Contains(argv0, "/") {
		return argv0, checkExec(argv0)
	}
	pathEnv := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	var denied error
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, argv0)
		err := checkExec(p)
		if err == nil {
			return p, nil
		}
		if errors.Is(err, unix.EACCES) && denied == nil {
			denied = err
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", unix.ENOENT
}

func checkExec(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return errno
		}
		return unix.ENOENT
	}
	if fi.IsDir() {
		return unix.EACCES
	}
	return unix.Access(p, unix.X_OK)
}

// spawnPayload starts the payload and returns its pid in the jail.
//
// Preconditions:
//   - Called by stage-2 after setupJail, so that paths are the jail's.
func spawnPayload(p *Plan, syncF *os.File) (int, *StageError) {
	argv0 := p.Argv[0]
	bin, err := lookPath(argv0, p.Env)
	if err != nil {
		return 0, stageErr("exec", "execve", argv0, err)
	}
	type result struct {
		pid int
		err *StageError
	}
	ch := make(chan result, 1)
	go func() {
		// Capabilities and no_new_privs are per-thread attributes that a
		// child inherits from the thread that forks it. We change them on
		// this locked thread only and fork the payload from it; the
		// thread is never unlocked, so Go retires it when this goroutine
		// ends and init's other threads keep their capabilities for
		// later work.
		runtime.LockOSThread()
		if e := dropPrivileges(p.Caps); e != nil {
			ch <- result{err: e}
			return
		}
		// Only fds 0, 1 and 2 reach the payload: whatever warden itself
		// inherited without O_CLOEXEC is closed at exec.
		if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
			ch <- result{err: stageErr("fds", "close_range", "", err)}
			return
		}
		fds := []uintptr{0, 1, 2}
		for i := range p.PassFDs {
			fds = append(fds, uintptr(fdPass+i))
		}
		// seccomp goes last, on this thread only (no TSYNC): init's other
		// threads stay unfiltered, and the filter need not allow anything
		// warden does before this point (bubblewrap and runc do the same).
		if len(p.Seccomp) > 0 {
			nfd, err := seccomp.Install(p.Seccomp, p.SeccompAudit)
			if err != nil {
				ch <- result{err: stageErr("seccomp", "seccomp(SECCOMP_SET_MODE_FILTER)", p.SeccompName, err)}
				return
			}
			if nfd >= 0 {
				// The supervisor lives outside the jail: the payload
				// cannot reach it, and it reads /proc of the host.
				err := sendFD(syncF, Message{Kind: MsgNotify}, nfd)
				unix.Close(nfd)
				if err != nil {
					ch <- result{err: stageErr("seccomp", "send notify fd", "", err)}
					return
				}
			}
		}
		restore, e := setRlimits(p.Rlimits)
		if e != nil {
			ch <- result{err: e}
			return
		}
		defer restore()
		attr := &syscall.ProcAttr{
			Env:   p.Env,
			Files: fds,
			Sys: &syscall.SysProcAttr{
				Setpgid:    true,
				Foreground: p.Foreground,
				Ctty:       0,
			},
		}
		pid, err := syscall.ForkExec(bin, p.Argv, attr)
		if err != nil {
			ch <- result{err: stageErr("exec", "execve", bin, err)}
			return
		}
		ch <- result{pid: pid}
	}()
	r := <-ch
	return r.pid, r.err
}

// dropPrivileges reduces every capability set of the calling thread to keep
// (normally empty) and sets no_new_privs.
//
// Preconditions:
//   - runtime.LockOSThread is held and never released.
func dropPrivileges(keep []int) *StageError {
	kept := map[int]bool{}
	var mask [2]uint32
	for _, c := range keep {
		kept[c] = true
		mask[c/32] |= 1 << (c % 32)
	}
	// Ambient first: with them gone, exec as a non-root uid yields no
	// capabilities at all (capabilities(7), "transformation during
	// execve").
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return stageErr("capabilities", "PR_CAP_AMBIENT_CLEAR_ALL", "", err)
	}
	// The bounding set, because exec as uid 0 (--as-root) would otherwise
	// grant every capability in it.
	last := lastCap()
	for c := 0; c <= last; c++ {
		if kept[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return stageErr("capabilities", "PR_CAPBSET_DROP", "", err)
		}
	}
	// Inheritable last (capset needs CAP_SETPCAP only to add, not drop).
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return stageErr("capabilities", "capget", "", err)
	}
	data[0].Inheritable, data[1].Inheritable = mask[0], mask[1]
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return stageErr("capabilities", "capset", "", err)
	}
	// Kept capabilities survive exec as a non-root uid only as ambient
	// ones (they must be permitted and inheritable to be raised).
	for _, c := range keep {
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
			return stageErr("capabilities", "PR_CAP_AMBIENT_RAISE", "", err)
		}
	}
	// no_new_privs: setuid/setgid bits and file capabilities grant nothing
	// on exec, and it is required to load a seccomp filter unprivileged.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return stageErr("no_new_privs", "PR_SET_NO_NEW_PRIVS", "", err)
	}
	return nil
}

// loopbackUp brings "lo" of the jail's fresh network namespace up with one
// ioctl, instead of running ip(8).
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// setRlimits sets the payload's limits on stage-2 itself just before the
// fork (Go cannot set them between fork and exec), and returns a function
// that raises the soft limits back as far as the new hard limits allow.
// Lowered hard limits stay lowered for init too: raising a hard limit needs
// CAP_SYS_RESOURCE in the initial user namespace (setrlimit(2)), and that is
// exactly why the payload cannot undo them either.
func setRlimits(rl []Rlimit) (func(), *StageError) {
	var saved []Rlimit
	for _, r := range rl {
		var old syscall.Rlimit
		if err := syscall.Getrlimit(r.Resource, &old); err != nil {
			return nil, stageErr("rlimit", "getrlimit", r.Name, err)
		}
		saved = append(saved, Rlimit{Resource: r.Resource, Soft: old.Cur, Hard: old.Max})
		// syscall.Setrlimit (not x/sys) for RLIMIT_NOFILE, because it
		// also stops Go from restoring its saved NOFILE limit in the child.
		if err := syscall.Setrlimit(r.Resource, &syscall.Rlimit{Cur: r.Soft, Max: r.Hard}); err != nil {
			return nil, stageErr("rlimit", "setrlimit", r.Name, err)
		}
	}
	return func() {
		for _, s := range saved {
			var cur syscall.Rlimit
			if syscall.Getrlimit(s.Resource, &cur) == nil && s.Soft <= cur.Max {
				cur.Cur = s.Soft
				syscall.Setrlimit(s.Resource, &cur)
			}
		}
	}, nil
}
