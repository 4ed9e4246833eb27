package sandbox

import "golang.org/x/sys/unix"

// Inherited reports whether fd is a descriptor this process inherited from
// whoever started it: open, and not close-on-exec. execve(2) closes every
// close-on-exec descriptor, and Go (the runtime, os, and every library warden
// links) opens its own with O_CLOEXEC, so an open descriptor without the
// flag came through the exec. Checking only that fd is open would take, say,
// the pipe go-fuse's package initialiser keeps at fd 3 (fuse/doc.go) for one
// the caller passed.
func Inherited(fd int) bool {
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil && flags&unix.FD_CLOEXEC == 0
}
