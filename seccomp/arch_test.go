package seccomp

import (
	"runtime"
	"testing"
)

// requireAMD64 skips tests whose tables use x86_64 syscall numbers and ABIs.
func requireAMD64(t testing.TB) {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skipf("needs amd64 (the tables use x86_64 syscall numbers, i386 and x32); have %s", runtime.GOARCH)
	}
}
