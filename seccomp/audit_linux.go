package seccomp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Denial is what the Auditor saw of one denied syscall.
type Denial struct {
	Syscall   string
	Count     int
	FirstPID  int      // thread group id of the first caller, in the Auditor's pid namespace
	FirstArgv []string // its /proc/PID/cmdline, read while the syscall was blocked
}

// Auditor answers SECCOMP_RET_USER_NOTIF notifications on behalf of a
// profile compiled with Audit: each is failed with the errno the profile
// gives (Profile.Decide), so the payload sees exactly what it would without
// audit, and the call is recorded. The Auditor only observes; it never lets
// a denied call through (that would be SECCOMP_USER_NOTIF_FLAG_CONTINUE,
// which is unsafe for security decisions: seccomp_unotify(2)).
type Auditor struct {
	fd int
	p  *Profile

	mu      sync.Mutex
	denials []Denial
	index   map[string]int
	errs    []error
}

// NewAuditor returns an Auditor for the notify fd that Install returned (in
// the jail) and that was passed to warden's host process. The caller keeps
// ownership of notifyFd and closes it after Run returns.
func NewAuditor(notifyFd int, p *Profile) *Auditor {
	return &Auditor{fd: notifyFd, p: p, index: map[string]int{}}
}

// Run answers notifications until ctx is done or no filtered task is left
// (the kernel then reports POLLHUP on the fd). It returns nil in both cases,
// and an error only if the fd itself fails.
func (a *Auditor) Run(ctx context.Context) error {
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("seccomp audit: eventfd: %w", err)
	}
	defer unix.Close(wake)
	stop := context.AfterFunc(ctx, func() {
		var one = []byte{1, 0, 0, 0, 0, 0, 0, 0}
		_, _ = unix.Write(wake, one)
	})
	defer stop()
	for {
		fds := []unix.PollFd{{Fd: int32(a.fd), Events: unix.POLLIN}, {Fd: int32(wake), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("seccomp audit: poll: %w", err)
		}
		if fds[1].Revents != 0 {
			return nil
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			if err := a.handle(); err != nil {
				return err
			}
			continue
		}
		if fds[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
			return nil
		}
	}
}

// handle receives one notification, records it and answers it.
func (a *Auditor) handle() error {
	req, err := notifRecv(a.fd)
	switch {
	case err == unix.ENOENT || err == unix.EINTR:
		return nil // the caller died or was interrupted before we got it
	case err != nil:
		return fmt.Errorf("seccomp audit: receive: %w", err)
	}
	act, derr := a.p.Decide(Data{Arch: req.arch, Nr: req.nr, Args: req.args})
	errno := uint16(unix.EPERM)
	if derr == nil && act.Kind == ActErrno {
		errno = act.Errno
	}
	// Read the caller's identity while it is blocked in the syscall, then
	// check that the notification is still valid: if the task died and its
	// pid was reused, what we read belongs to someone else.
	tid := int(req.pid)
	pid, argv := procIdentity(tid)
	valid := notifIDValid(a.fd, req.id) == nil
	a.record(SyscallName(req.nr), pid, argv, valid, derr)
	if err := notifSend(a.fd, req.id, errno); err != nil && err != unix.ENOENT {
		return fmt.Errorf("seccomp audit: answer %s: %w", SyscallName(req.nr), err)
	}
	return nil
}

// procIdentity returns the thread group id and argv of thread tid. The
// notification carries the calling thread's id, which /proc resolves too.
func procIdentity(tid int) (int, []string) {
	if tid == 0 {
		return 0, nil // not visible in our pid namespace
	}
	pid := tid
	if st, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status"); err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(l, "Tgid:"); ok {
				if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					pid = n
				}
			}
		}
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/cmdline")
	if err != nil || len(raw) == 0 {
		return pid, nil
	}
	return pid, strings.Split(string(bytes.TrimSuffix(raw, []byte{0})), "\x00")
}

func (a *Auditor) record(name string, pid int, argv []string, valid bool, derr error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if derr != nil {
		a.errs = append(a.errs, derr)
	}
	i, ok := a.index[name]
	if !ok {
		d := Denial{Syscall: name}
		if valid {
			d.FirstPID, d.FirstArgv = pid, argv
		}
		a.denials = append(a.denials, d)
		i = len(a.denials) - 1
		a.index[name] = i
	}
	a.denials[i].Count++
}

// Denials returns what was denied so far, in order of first occurrence.
func (a *Auditor) Denials() []Denial {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Denial, len(a.denials))
	for i, d := range a.denials {
		d.FirstArgv = append([]string(nil), d.FirstArgv...)
		out[i] = d
	}
	return out
}

// Err reports profile evaluation errors met while answering (the call was
// then failed with EPERM).
func (a *Auditor) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return errors.Join(a.errs...)
}
