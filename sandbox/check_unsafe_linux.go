package sandbox

import (
	"bytes"
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

func seccompAvail() (string, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil || !bytes.Contains(b, []byte("Seccomp:")) {
		return "", errors.New("the kernel has no seccomp (no Seccomp: line in /proc/self/status)")
	}
	// SECCOMP_GET_ACTION_AVAIL tells whether the kernel knows an action.
	notif := uint32(unix.SECCOMP_RET_USER_NOTIF)
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, 2 /* SECCOMP_GET_ACTION_AVAIL */, 0, uintptr(unsafe.Pointer(&notif)))
	s := "seccomp filters available"
	if errno == 0 {
		s += "; SECCOMP_RET_USER_NOTIF available (--seccomp-audit)"
	} else {
		s += "; no SECCOMP_RET_USER_NOTIF (audit falls back to SECCOMP_RET_LOG)"
	}
	return s, nil
}
