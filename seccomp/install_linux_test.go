package seccomp

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary act as a helper process (see TestMain):
// filters are installed there, never in the test process itself.
const helperEnv = "WARDEN_SECCOMP_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

// probe is one syscall the helper makes after installing the filter.
type probe struct {
	name string
	nr   uintptr
	args [6]uintptr
}

func probes(devnull uintptr) []probe {
	var c byte = 'x'
	pc := uintptr(unsafe.Pointer(&c))
	return []probe{
		{"getpid", unix.SYS_GETPID, [6]uintptr{}},
		{"keyctl", unix.SYS_KEYCTL, [6]uintptr{unix.KEYCTL_GET_KEYRING_ID, ^uintptr(2), 0}}, // KEY_SPEC_SESSION_KEYRING = -3
		{"bpf", unix.SYS_BPF, [6]uintptr{unix.BPF_PROG_LOAD, 0, 0}},
		{"perf_event_open", unix.SYS_PERF_EVENT_OPEN, [6]uintptr{0, 0, ^uintptr(0), ^uintptr(0), 0}},
		{"userfaultfd", unix.SYS_USERFAULTFD, [6]uintptr{0}},
		{"open_by_handle_at", unix.SYS_OPEN_BY_HANDLE_AT, [6]uintptr{^uintptr(99), 0, 0}},
		{"unshare CLONE_NEWUSER", unix.SYS_UNSHARE, [6]uintptr{unix.CLONE_NEWUSER}},
		{"mount tmpfs", unix.SYS_MOUNT, [6]uintptr{0, 0, 0, 0, 0}},
		{"clone3", unix.SYS_CLONE3, [6]uintptr{0, 0}},
		{"syscall 1000", 1000, [6]uintptr{}},
		{"ioctl TIOCSTI", unix.SYS_IOCTL, [6]uintptr{devnull, unix.TIOCSTI, pc}},
		{"ioctl TIOCSTI high bits", unix.SYS_IOCTL, [6]uintptr{devnull, 1<<32 | unix.TIOCSTI, pc}},
		{"ioctl TCGETS", unix.SYS_IOCTL, [6]uintptr{devnull, unix.TCGETS, 0}},
		{"personality query", unix.SYS_PERSONALITY, [6]uintptr{0xffffffff}},
		{"personality READ_IMPLIES_EXEC", unix.SYS_PERSONALITY, [6]uintptr{0x0400000}},
	}
}

// runProbes makes each probe on the calling (filtered) thread and returns
// the errno names.
func runProbes(devnull uintptr) map[string]string {
	out := map[string]string{}
	for _, p := range probes(devnull) {
		_, _, e := unix.Syscall6(p.nr, p.args[0], p.args[1], p.args[2], p.args[3], p.args[4], p.args[5])
		out[p.name] = errName(e)
	}
	return out
}

func errName(e unix.Errno) string {
	if e == 0 {
		return "ok"
	}
	return unix.ErrnoName(e)
}

func runHelper(mode string) int {
	// The filter goes on this thread only; keep the goroutine on it.
	runtime.LockOSThread()
	devnull, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	o := Options{Audit: mode == "audit"}
	p, err := Resolve("default", o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	prog, err := Compile(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := SetNoNewPrivs(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fd, err := Install(prog, mode == "audit")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	res := map[string]string{}
	switch mode {
	case "install":
		res = runProbes(uintptr(devnull))
	case "audit":
		// fd 3 is a unix socket to the test: pass the listener out, as
		// the payload passes it to warden's host process.
		if err := unix.Sendmsg(3, []byte{0}, unix.UnixRights(fd), nil, 0); err != nil {
			fmt.Fprintln(os.Stderr, "sendmsg:", err)
			return 2
		}
		unix.Close(fd)
		for i, n := range []string{"keyctl", "keyctl", "bpf", "getpid"} {
			var e unix.Errno
			switch n {
			case "keyctl":
				_, _, e = unix.Syscall(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, ^uintptr(2), 0)
			case "bpf":
				_, _, e = unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, 0, 0)
			case "getpid":
				_, _, e = unix.Syscall(unix.SYS_GETPID, 0, 0, 0)
			}
			res[fmt.Sprintf("%d %s", i, n)] = errName(e)
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 2
	}
	return 0
}

func helperCmd(t *testing.T, mode string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "warden-helper-"+mode)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Stderr = &strings.Builder{}
	return cmd
}

func decodeResult(t *testing.T, out []byte, cmd *exec.Cmd) map[string]string {
	t.Helper()
	got := map[string]string{}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("helper output %q: %v; stderr: %s", out, err, cmd.Stderr)
	}
	return got
}

// TestInstall loads the default profile for real in a helper process (no
// root needed: PR_SET_NO_NEW_PRIVS suffices) and checks what each attack
// gets.
func TestInstall(t *testing.T) {
	requireAMD64(t)
	cmd := helperCmd(t, "install")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v; stderr: %s", err, cmd.Stderr)
	}
	got := decodeResult(t, out, cmd)
	want := map[string]string{
		"getpid":                        "ok",
		"keyctl":                        "EPERM",
		"bpf":                           "EPERM",
		"perf_event_open":               "EPERM",
		"userfaultfd":                   "EPERM",
		"open_by_handle_at":             "EPERM",
		"unshare CLONE_NEWUSER":         "EPERM",
		"mount tmpfs":                   "EPERM",
		"clone3":                        "ENOSYS",
		"syscall 1000":                  "ENOSYS",
		"ioctl TIOCSTI":                 "EPERM",
		"ioctl TIOCSTI high bits":       "EPERM",
		"ioctl TCGETS":                  "ENOTTY",
		"personality query":             "ok",
		"personality READ_IMPLIES_EXEC": "EPERM",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("syscall results under the default profile (-want +got):\n%s", diff)
	}
}

// TestAuditor installs an audit profile with a listener in a helper, passes
// the notify fd to this process, and checks that the Auditor answers with
// EPERM and records name, count, pid and argv.
func TestAuditor(t *testing.T) {
	requireAMD64(t)
	if !NotifySupported() {
		t.Skip("needs SECCOMP_RET_USER_NOTIF (Linux 5.0+)")
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours := os.NewFile(uintptr(pair[0]), "audit-parent")
	theirs := os.NewFile(uintptr(pair[1]), "audit-child")
	defer ours.Close()
	cmd := helperCmd(t, "audit")
	cmd.ExtraFiles = []*os.File{theirs}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(pair[0], buf, oob, 0)
	if err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("recvmsg: %v; stderr: %s", err, cmd.Stderr)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		_ = cmd.Process.Kill()
		t.Fatalf("control message: %v (%d messages); stderr: %s", err, len(msgs), cmd.Stderr)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		_ = cmd.Process.Kill()
		t.Fatalf("unix rights: %v %v", err, fds)
	}
	notifyFd := fds[0]
	defer unix.Close(notifyFd)

	p := mustResolve(t, "default", Options{Audit: true})
	a := NewAuditor(notifyFd, p)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v; stderr: %s", err, cmd.Stderr)
	}
	// All filtered tasks are gone: the kernel hangs up the listener and
	// Run returns by itself.
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Auditor.Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Auditor.Run did not return after the helper exited")
	}
	got := decodeResult(t, []byte(stdout.String()), cmd)
	want := map[string]string{"0 keyctl": "EPERM", "1 keyctl": "EPERM", "2 bpf": "EPERM", "3 getpid": "ok"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("helper's syscall results (-want +got):\n%s", diff)
	}
	wantDenials := []Denial{
		{Syscall: "keyctl", Count: 2, FirstPID: cmd.Process.Pid, FirstArgv: cmd.Args},
		{Syscall: "bpf", Count: 1, FirstPID: cmd.Process.Pid, FirstArgv: cmd.Args},
	}
	if diff := cmp.Diff(wantDenials, a.Denials()); diff != "" {
		t.Errorf("Denials (-want +got):\n%s", diff)
	}
	if err := a.Err(); err != nil {
		t.Errorf("Auditor.Err: %v", err)
	}
}

// TestAuditorStopsOnCancel checks that Run returns when its context ends
// even though the listener stays open.
func TestAuditorStopsOnCancel(t *testing.T) {
	// Any fd that never becomes readable stands in for an idle listener.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	a := NewAuditor(int(r.Fd()), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if d := a.Denials(); len(d) != 0 {
		t.Errorf("Denials = %v, want none", d)
	}
}
