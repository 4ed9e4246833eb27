package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/warden-sandbox/warden/sandbox/cgroup"
	"github.com/warden-sandbox/warden/sandbox/netns"
)

// TestDiagnoseMountEPERM: EPERM from a new proc or sysfs and EPERM from a
// bind have different causes, and get different hints.
func TestDiagnoseMountEPERM(t *testing.T) {
	for _, tc := range []struct {
		detail, want string
	}{
		{"proc /proc: create proc", "new proc only where the current one is not partly covered"},
		{"sysfs ro /sys: create sysfs", "new sysfs only where"},
		{"bind ro /srv/data -> /srv/data: attach", "\"locked\" flags"},
	} {
		h := Diagnose(&StageError{Step: "mount", Errno: syscall.EPERM, Detail: tc.detail})
		if len(h) != 1 || !strings.Contains(h[0], tc.want) {
			t.Errorf("Diagnose(mount EPERM %q) = %q, want a hint with %q", tc.detail, h, tc.want)
		}
	}
}

// TestUsageErrorWraps: a UsageError keeps what its %w wrapped, so callers
// can still branch on the cause (issue 15 item 12).
func TestUsageErrorWraps(t *testing.T) {
	err := Usagef("--ro %s: %w", "/x", fs.ErrNotExist)
	var ue *UsageError
	if !errors.As(err, &ue) || !errors.Is(err, fs.ErrNotExist) || err.Error() != "--ro /x: file does not exist" {
		t.Errorf("Usagef with %%w: %v (As %v, Is %v)", err, errors.As(err, &ue), errors.Is(err, fs.ErrNotExist))
	}
	if errors.Unwrap(Usagef("plain %d", 1)) != nil {
		t.Error("a UsageError without %w unwraps to something")
	}
}

func TestJoinReasons(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"the memory controller is not delegated to /x"}, "the memory controller is not delegated to /x"},
		{[]string{"the memory controller is in v1", "the cpu controller is in v1", "the pids controller is in v1"},
			"the memory, cpu and pids controllers are in v1"},
		{[]string{"the memory controller is in v1", "no cgroup2 here"}, "the memory controller is in v1; no cgroup2 here"},
		{[]string{"the memory controller is in v1", "the cpu controller is gone"}, "the memory controller is in v1; the cpu controller is gone"},
	} {
		if got := joinReasons(tc.in); got != tc.want {
			t.Errorf("joinReasons(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestDiagnoseEveryKind: every kind of error warden returns gets its hint
// lines from Diagnose, however deeply it is wrapped (issue 15 item 11).
func TestDiagnoseEveryKind(t *testing.T) {
	netErr := fmt.Errorf("network pasta: %w", &netns.Error{Op: "find pasta", Err: netns.ErrHelperNotFound, Hint: "apt install passt"})
	cgErr := fmt.Errorf("enforce: %w", &cgroup.NotEnforcedError{Failures: []cgroup.Failure{{Limit: "memory", Controller: "memory", Reason: "not delegated", Fix: "delegate memory"}}})
	for _, tc := range []struct {
		name string
		err  error
		want string // a hint must contain this; "" = no hint
	}{
		{"network helper missing", netErr, "apt install passt"},
		{"network error without a fix", &netns.Error{Op: "start pasta", Err: errors.New("exit 1")}, ""},
		{"cgroup limit not enforced", cgErr, "warden check"},
		{"exec not found", &StageError{Step: "exec", Errno: syscall.ENOENT}, "jail's PATH"},
		{"exec not executable", &StageError{Step: "exec", Errno: syscall.EACCES}, "cannot be executed"},
		{"seccomp refused", &StageError{Step: "seccomp", Errno: syscall.EINVAL}, "warden check"},
		{"mount source gone", &StageError{Step: "mount", Errno: syscall.ENOENT}, "disappeared"},
		{"user namespace refused", fmt.Errorf("create user namespace: %w", syscall.EPERM), "warden check"},
		{"usage error", Usagef("--memory: bad"), ""},
		{"plain error", errors.New("something"), ""},
	} {
		hints := Diagnose(tc.err)
		got := strings.Join(hints, "\n")
		if tc.want == "" && len(hints) != 0 || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s: hints %q, want one with %q", tc.name, hints, tc.want)
		}
	}
}

// TestLeafNotRemoved: a jail cgroup that Remove left behind is told on the
// log at once and lands in the run's report; no error, no word.
func TestLeafNotRemoved(t *testing.T) {
	var log strings.Builder
	res := &Result{}
	leafNotRemoved(res, nil, &log)
	if log.Len() != 0 || len(res.Warnings) != 0 {
		t.Fatalf("no error: log %q, warnings %v; want neither", log.String(), res.Warnings)
	}
	err := fmt.Errorf("remove cgroup /sys/fs/cgroup/x/warden-1: %w", syscall.EBUSY)
	leafNotRemoved(res, err, &log)
	if len(res.Warnings) != 1 || !res.Warnings[0].Printed || !strings.Contains(res.Warnings[0].Reason, "warden-1") {
		t.Fatalf("warnings %+v; want one, printed, naming the cgroup", res.Warnings)
	}
	if got := log.String(); !strings.HasPrefix(got, "warden: warning: jail cgroup left behind: remove cgroup /sys/fs/cgroup/x/warden-1: device or resource busy;") || strings.Count(got, "\n") != 1 {
		t.Errorf("log %q; want one warning line naming the cgroup", got)
	}
	// A setup error has no result: the log still says it.
	log.Reset()
	leafNotRemoved(nil, err, &log)
	if !strings.Contains(log.String(), "warden-1") {
		t.Errorf("log %q without a result; want the warning", log.String())
	}
}
