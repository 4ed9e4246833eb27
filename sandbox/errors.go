package sandbox

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/warden-sandbox/warden/sandbox/cgroup"
)

// StageError reports a failed step of the jail's programs (jailprog), the
// setup inside the jail. It holds only plain data (the report carries it).
type StageError struct {
	Step   string        `json:"step"` // "mount", "pivot_root", "hostname", "exec", ...
	Op     string        `json:"op"`   // "mount(2)", "execve", ...
	Path   string        `json:"path,omitempty"`
	Errno  syscall.Errno `json:"errno"`
	Detail string        `json:"detail,omitempty"`
}

func (e *StageError) Error() string {
	var b strings.Builder
	b.WriteString("jail setup: ")
	b.WriteString(e.Step)
	if e.Path != "" {
		if e.Step == "exec" {
			fmt.Fprintf(&b, " %q", e.Path)
		} else {
			b.WriteString(" " + e.Path)
		}
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if e.Errno != 0 {
		b.WriteString(": " + e.Errno.Error())
	}
	return b.String()
}

func (e *StageError) Unwrap() error {
	if e.Errno == 0 {
		return nil
	}
	return e.Errno
}

// UsageError is a bad flag, argument or option value: exit 125, no hint
// beyond its own text.
type UsageError struct {
	Msg string
	err error // what a %w in Usagef's format wrapped
}

func (e *UsageError) Error() string { return e.Msg }

// Unwrap returns the error a %w in the format wrapped, if any.
func (e *UsageError) Unwrap() error { return e.err }

// Usagef builds a UsageError; %w wraps an error as fmt.Errorf does.
func Usagef(format string, a ...any) error {
	e := fmt.Errorf(format, a...)
	return &UsageError{Msg: e.Error(), err: errors.Unwrap(e)}
}

// Warning is a protection or request that was not applied as asked, with the
// reason. Callers print each one and record it in the run report.
type Warning struct {
	What   string `json:"what"`
	Reason string `json:"reason"`
	// Loud warnings are printed at every log level: they name a way the
	// jail is weaker than the user may think. The others are notes
	// (printed at --log-level info).
	Loud bool `json:"-"`
	// Printed says Run already printed it, before the command started.
	Printed bool `json:"-"`
}

func (w Warning) String() string { return w.What + ": " + w.Reason }

// bug marks an internal invariant violation.
func bug(err error) error {
	return fmt.Errorf("BUG(warden): this should not have happened; please report: %w", err)
}

// Hinter is an error that carries its own hint lines (the fix), as
// netns.Error and cgroup.NotEnforcedError do.
type Hinter interface {
	error
	Hints() []string
}

// HintError is a refusal that knows its fix: the message, then the hint
// lines.
type HintError struct {
	Msg  string
	Hint []string
}

func (e *HintError) Error() string   { return e.Msg }
func (e *HintError) Hints() []string { return e.Hint }

// Diagnose maps an error to hint lines for the user: the cause when it is
// the host's, and the fix. Hints travel with the errors that know them
// (Hinter); the rest are recognised here.
func Diagnose(err error) []string {
	var ne *cgroup.NotEnforcedError
	if errors.As(err, &ne) {
		return append(ne.Hints(), "`warden check` (item cgroup) shows what this host delegates")
	}
	var h Hinter
	if errors.As(err, &h) {
		if hints := h.Hints(); len(hints) > 0 {
			return hints
		}
	}
	var se *StageError
	if errors.As(err, &se) {
		switch {
		case se.Step == "exec" && se.Errno == syscall.ENOENT:
			return []string{"the command is looked up in the jail's PATH, inside the jail's file system view; " +
				"use an absolute path or make its directory visible with --ro DIR"}
		case se.Step == "exec" && (se.Errno == syscall.EACCES || se.Errno == syscall.ENOEXEC):
			return []string{"the file exists but cannot be executed in the jail (no x bit, a noexec mount such as /tmp or $HOME, or not a valid executable)"}
		case se.Step == "mount" && se.Errno == syscall.EPERM && (strings.HasPrefix(se.Detail, "proc ") || strings.HasPrefix(se.Detail, "sysfs ")):
			// mount_too_revealing(): a new proc or sysfs needs the current
			// one fully visible to this user namespace.
			return []string{"the kernel gives a user namespace a new " + strings.Fields(se.Detail)[0] + " only where the current one is not " +
				"partly covered by mounts made outside it, as inside another sandbox (a warden jail covers /proc/sys, /proc/irq " +
				"and /proc/bus read-only); run warden outside that sandbox"}
		case se.Step == "mount" && se.Errno == syscall.EPERM:
			return []string{"bind mounts in a user namespace cannot drop ro/nosuid/nodev/noexec that the source mount has " +
				"(mount_namespaces(7), \"locked\" flags); mount the path read-only or pick another source"}
		case se.Step == "mount" && strings.HasPrefix(se.Detail, "overlay ") && se.Errno == syscall.EINVAL:
			return []string{"overlayfs in a user namespace refuses a directory with other mounts below it (their mounts are locked " +
				"to the host's), and takes layers by fd only since Linux 6.13; overlay a directory that has no mounts below it " +
				"(`findmnt -R DIR`), or show it with --ro/--rw instead"}
		case se.Step == "mount" && strings.HasPrefix(se.Detail, "overlay ") && (se.Errno == syscall.ENODEV || se.Errno == syscall.EPERM):
			return []string{"this kernel does not let an unprivileged user namespace mount overlayfs (Linux 5.11 or later is needed, " +
				"and some distributions turn it off); use --ro/--rw instead"}
		case se.Step == "seccomp":
			return []string{"the kernel refused the seccomp filter; run `warden check` (seccomp) or use --seccomp none to run without one"}
		case se.Step == "mount" && se.Errno == syscall.ENOENT:
			return []string{"a source path disappeared between planning and mounting, or does not exist"}
		}
	}
	switch {
	case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.ENOSPC):
		if strings.Contains(err.Error(), "user namespace") {
			return userNSHints()
		}
	}
	return nil
}

func userNSHints() []string {
	var h []string
	if b, err := os.ReadFile("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"); err == nil && strings.TrimSpace(string(b)) == "1" {
		h = append(h, "kernel.apparmor_restrict_unprivileged_userns is 1 (the default since Ubuntu 24.04): "+
			"install an AppArmor profile with \"userns,\" for the warden binary (see README)")
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		h = append(h, "user.max_user_namespaces is 0: sysctl -w user.max_user_namespaces=15000")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(b)) == "0" {
		h = append(h, "kernel.unprivileged_userns_clone is 0: sysctl -w kernel.unprivileged_userns_clone=1")
	}
	if len(h) == 0 && underSeccomp() {
		h = append(h, "warden itself runs under a seccomp filter, which may refuse new user namespaces; inside a warden jail, "+
			"give the outer jail a policy with nested_userns = true in its [seccomp] table")
	}
	if len(h) == 0 {
		h = append(h, "unprivileged user namespaces are not allowed here (a container without them, a seccomp policy, or a sysctl)")
	}
	return append(h, "`warden check` (item userns) probes this host and prints the fix")
}

// underSeccomp reports whether this process runs under a seccomp filter
// (proc(5): "Seccomp: 2" in /proc/self/status).
func underSeccomp() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Seccomp:"); ok {
			return strings.TrimSpace(v) == "2"
		}
	}
	return false
}
