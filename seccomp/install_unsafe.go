//go:build linux

package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// InstallFlags are extra SECCOMP_FILTER_FLAG_* bits for InstallWith.
type InstallFlags struct {
	Listener bool // SECCOMP_FILTER_FLAG_NEW_LISTENER: return a notify fd
	Log      bool // SECCOMP_FILTER_FLAG_LOG: log every non-allow verdict (Profile.LogDenials)
}

// Install loads prog on the calling thread only, with
// SECCOMP_FILTER_FLAG_NEW_LISTENER when listener is true, and returns the
// notify fd (or -1).
//
// Preconditions:
//   - runtime.LockOSThread is held, and the goroutine stays locked until it
//     execs or exits: the filter belongs to this OS thread.
//   - PR_SET_NO_NEW_PRIVS is already set on this thread (or the thread has
//     CAP_SYS_ADMIN in its user namespace); seccomp(2) refuses otherwise.
func Install(prog []byte, listener bool) (notifyFd int, err error) {
	return InstallWith(prog, InstallFlags{Listener: listener})
}

// InstallWith is Install with all flags. TSYNC is never set: warden filters
// the calling thread only.
func InstallWith(prog []byte, fl InstallFlags) (int, error) {
	ins, err := Decode(prog)
	if err != nil {
		return -1, fmt.Errorf("seccomp install: %w", err)
	}
	if len(ins) == 0 || len(ins) > maxInsns {
		return -1, fmt.Errorf("seccomp install: program has %d instructions, want 1-%d", len(ins), maxInsns)
	}
	fprog := unix.SockFprog{Len: uint16(len(ins)), Filter: &ins[0]}
	var flags uintptr
	if fl.Listener {
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	}
	if fl.Log {
		flags |= unix.SECCOMP_FILTER_FLAG_LOG
	}
	// RawSyscall: nothing may run between entering and leaving the kernel
	// that could move us off this thread; the thread is locked anyway.
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(ins)
	if errno != 0 {
		if errno == unix.EACCES {
			return -1, fmt.Errorf("seccomp install: %w (set PR_SET_NO_NEW_PRIVS first)", errno)
		}
		return -1, fmt.Errorf("seccomp install: %w", errno)
	}
	if !fl.Listener {
		return -1, nil
	}
	return int(r), nil
}

// SetNoNewPrivs sets PR_SET_NO_NEW_PRIVS on the calling thread, which
// seccomp(2) requires of an unprivileged caller; exec can then never grant
// privileges (setuid bits, file capabilities) to the filtered program.
func SetNoNewPrivs() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	return nil
}

func seccompGetActionAvail(action uint32) error {
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action)))
	if errno != 0 {
		return errno
	}
	return nil
}

var errNotifyGone = errors.New("notification target is gone")
