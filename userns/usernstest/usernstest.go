// Package usernstest runs a test function as root of a throwaway user
// namespace (with its own mount and pid namespaces), so that apply code can
// mount and pivot_root for real without privileges on the host.
//
// It must only be imported by tests.
package usernstest

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

const (
	envMarker = "WARDEN_USERNSTEST"
	envDir    = "WARDEN_USERNSTEST_DIR"
)

// Dir returns, in the child, a directory the parent created with t.TempDir
// and removes after the child exits (the child's own t.TempDir cleanup may
// run after a pivot_root, where the path no longer leads to it).
func Dir(t *testing.T) string {
	d := os.Getenv(envDir)
	if d == "" {
		t.Fatal("usernstest.Dir called outside usernstest.Run")
	}
	return d
}

// Run runs fn in a child process: the test binary re-executed with
// -test.run=^Name$ into CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWPID|CLONE_NEWNET
// with the caller mapped to uid 0. In the parent, Run waits for the child and
// fails t if the child failed; in the child, it calls fn. If user namespaces
// are unavailable, the test is skipped with the reason.
func Run(t *testing.T, fn func(t *testing.T)) {
	t.Helper()
	if os.Getenv(envMarker) == t.Name() {
		fn(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+strings.ReplaceAll(t.Name(), "/", "$/^")+"$", "-test.v")
	cmd.Env = append(os.Environ(), envMarker+"="+t.Name(), envDir+"="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*os.SyscallError); ok || strings.Contains(err.Error(), "operation not permitted") {
			t.Skipf("needs unprivileged user namespaces: %v", err)
		}
		t.Fatalf("in user namespace: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "--- SKIP") {
		t.Skipf("skipped in user namespace:\n%s", out)
	}
	if !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("in user namespace: the test did not run:\n%s", out)
	}
	t.Logf("in user namespace:\n%s", out)
}
