//go:build linux

package seccomp

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// struct seccomp_notif and struct seccomp_notif_resp (<linux/seccomp.h>).
type notifReq struct {
	id    uint64
	pid   uint32
	flags uint32
	nr    int32
	arch  uint32
	ip    uint64
	args  [6]uint64
}

type notifResp struct {
	id    uint64
	val   int64
	error int32
	flags uint32
}

// _IOW('!', 2, __u64); kernels before 5.17 used the _IOR encoding, which
// current kernels still accept.
const (
	ioctlNotifIDValid    = 0x40082102
	ioctlNotifIDValidOld = 0x80082102
)

func notifRecv(fd int) (notifReq, error) {
	// The kernel requires a zeroed buffer (EINVAL otherwise).
	var req notifReq
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req)))
	if errno != 0 {
		return req, errno
	}
	return req, nil
}

func notifIDValid(fd int, id uint64) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), ioctlNotifIDValid, uintptr(unsafe.Pointer(&id)))
	if errno == unix.EINVAL {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, uintptr(fd), ioctlNotifIDValidOld, uintptr(unsafe.Pointer(&id)))
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// notifSend answers id with -errno (the syscall fails with errno).
func notifSend(fd int, id uint64, errno uint16) error {
	resp := notifResp{id: id, error: -int32(errno)}
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp)))
	if e != 0 {
		return e
	}
	return nil
}
