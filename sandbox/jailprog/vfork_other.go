//go:build linux && !amd64

package jailprog

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// vforkFlags: on this architecture the payload is a plain fork of init.
const vforkFlags = 0

//go:nosplit
//go:norace
func vforkClone3(args uintptr, size uintptr) (uintptr, uintptr) {
	r1, _, e := syscall.RawSyscall6(unix.SYS_CLONE3, args, size, 0, 0, 0, 0)
	return r1, uintptr(e)
}

const haveCloneVM = false

func cloneVM(args uintptr, size uintptr, c uintptr) (uintptr, uintptr) {
	return 0, uintptr(syscall.ENOSYS)
}
