package seccomp

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Options are the policy's [seccomp] adjustments.
type Options struct {
	Allow        []string // syscalls to allow unconditionally
	Deny         []string // syscalls to deny with the denied action
	Errno        string   // errno of the denied set: "EPERM" (default), "EACCES", a number
	Action       string   // "errno" (default), "kill" or "log" for the denied set
	NestedUserns bool     // allow unshare, setns, clone with CLONE_NEW*, and clone3
	IOUring      bool     // allow io_uring_*
	Ptrace       bool     // allow ptrace, process_vm_*, kcmp, pidfd_getfd, process_madvise
	Audit        bool     // report denials (USER_NOTIF, or SECCOMP_FILTER_FLAG_LOG as a fallback)
}

// ErrUnknownSyscall is wrapped by errors about names that are no syscall.
var ErrUnknownSyscall = errUnknownSyscall

// Resolve loads a built-in profile by name, or a Docker/OCI JSON profile when
// profileNameOrPath contains a "/" or ends in ".json", and applies o. It
// returns (nil, nil) for "none" unless o asks for something a filter is
// needed for, which is an error.
func Resolve(profileNameOrPath string, o Options) (*Profile, error) {
	var (
		p   *Profile
		err error
	)
	if strings.ContainsRune(profileNameOrPath, '/') || strings.HasSuffix(profileNameOrPath, ".json") {
		p, err = LoadFile(profileNameOrPath)
	} else {
		if profileNameOrPath == "" {
			profileNameOrPath = ProfileDefault
		}
		p, err = Builtin(profileNameOrPath)
	}
	if err != nil {
		return nil, err
	}
	if p == nil {
		if len(o.Allow)+len(o.Deny) > 0 || o.Audit {
			return nil, errors.New("seccomp profile none: allow, deny and audit need a filter; pick a profile such as default")
		}
		return nil, nil
	}
	if err := apply(p, o, NotifySupported); err != nil {
		return nil, err
	}
	return p, nil
}

// apply edits p by o. notifyOK reports whether USER_NOTIF works here.
func apply(p *Profile, o Options, notifyOK func() bool) error {
	errno, err := ParseErrno(o.Errno)
	if err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	denied, err := ParseAction(o.Action, errno)
	if err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	// A name written "?name" is optional: skipped, with a warning, where
	// this kernel or libseccomp does not know it (a policy written for
	// newer kernels); any other unknown name is an error.
	var err2 error
	if o.Allow, err2 = knownNames(p, o.Allow); err2 != nil {
		return err2
	}
	if o.Deny, err2 = knownNames(p, o.Deny); err2 != nil {
		return err2
	}
	if o.Errno != "" || o.Action != "" {
		// Re-target every denial, the default included; ENOSYS answers
		// (clone3, newer syscalls) are not denials and stay.
		if p.DefaultAction.IsDenial() {
			p.DefaultAction = denied
		}
		for i := range p.Rules {
			if p.Rules[i].Action.IsDenial() {
				p.Rules[i].Action = denied
			}
		}
	}
	if o.Ptrace {
		allowGroup(p, groupPtrace)
	}
	if o.IOUring {
		allowGroup(p, groupIOUring)
	}
	if o.NestedUserns {
		allowGroup(p, groupNamespaces)
	}
	if len(o.Allow) > 0 {
		p.Groups = append(p.Groups, Group{Name: groupAllow, Reason: "allowed by the policy (allow = [...])"})
		for _, n := range o.Allow {
			setOnly(p, n, Rule{Syscall: n, Action: Allow, Group: groupAllow})
		}
	}
	if len(o.Deny) > 0 {
		p.Groups = append(p.Groups, Group{Name: groupDeny, Reason: "denied by the policy (deny = [...])"})
		for _, n := range o.Deny {
			setOnly(p, n, Rule{Syscall: n, Action: denied, Group: groupDeny})
		}
	}
	if o.Audit {
		switch {
		case denied.Kind != ActErrno:
			p.Warnings = append(p.Warnings, Warning{Msg: fmt.Sprintf("seccomp audit reports errno denials only; action %q is not audited", o.Action)})
		case notifyOK():
			p.Audit = true
		default:
			p.LogDenials = true
			p.Warnings = append(p.Warnings, Warning{Msg: "seccomp audit: SECCOMP_RET_USER_NOTIF is unavailable here; denials go to the kernel audit log (SECCOMP_FILTER_FLAG_LOG) instead"})
		}
	}
	return nil
}

// allowGroup makes every rule of group g an unconditional allow, once per
// syscall.
func allowGroup(p *Profile, g string) {
	var names []string
	for _, r := range p.Rules {
		if r.Group == g && !slices.Contains(names, r.Syscall) {
			names = append(names, r.Syscall)
		}
	}
	for _, n := range names {
		setOnly(p, n, Rule{Syscall: n, Action: Allow, Group: g})
	}
}

// setOnly replaces all rules for r.Syscall with r, at the place of the first.
func setOnly(p *Profile, name string, r Rule) {
	out := p.Rules[:0]
	placed := false
	for _, x := range p.Rules {
		if x.Syscall != name {
			out = append(out, x)
			continue
		}
		if !placed {
			out = append(out, r)
			placed = true
		}
	}
	if !placed {
		out = append(out, r)
	}
	p.Rules = out
}

// NotifySupported reports whether the kernel offers SECCOMP_RET_USER_NOTIF
// (Linux 5.0+), via SECCOMP_GET_ACTION_AVAIL.
func NotifySupported() bool {
	act := uint32(unix.SECCOMP_RET_USER_NOTIF)
	return seccompGetActionAvail(act) == nil
}

// cacheHome is $XDG_CACHE_HOME or ~/.cache.
func cacheHome() (string, error) {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return d, nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("seccomp cache: %w", err)
	}
	return h + "/.cache", nil
}

// knownNames checks syscall names, drops unknown optional ("?name") ones
// with a warning on p, and strips the "?" of the rest.
func knownNames(p *Profile, names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		name, optional := strings.CutPrefix(n, "?")
		if err := checkName(name); err != nil {
			if optional {
				p.Warnings = append(p.Warnings, Warning{Msg: fmt.Sprintf("seccomp: optional syscall %q is unknown here; skipped", name)})
				continue
			}
			return nil, fmt.Errorf("seccomp: %w", err)
		}
		out = append(out, name)
	}
	return out, nil
}
