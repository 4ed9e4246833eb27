package cgroup

import (
	"errors"
	"fmt"
	"strings"
)

// Causes, for errors.Is on a *NotEnforcedError or an error from Setup.
var (
	// ErrNoCgroup2 means no cgroup2 file system is mounted (a cgroup v1 host).
	ErrNoCgroup2 = errors.New("no cgroup2 file system mounted")
	// ErrNotDelegated means the caller's cgroup is not writable by it and no
	// systemd user manager gave it a delegated scope.
	ErrNotDelegated = errors.New("cgroup not delegated")
	// ErrControllerUnavailable means a controller a limit needs is not
	// available in the delegated subtree (cgroup.controllers lacks it).
	ErrControllerUnavailable = errors.New("controller not available")
	// ErrNoUserBus means there is no systemd user manager to ask for a scope.
	ErrNoUserBus = errors.New("no systemd user bus")
)

// Warning says that one limit is not enforced, in BestEffort mode. The caller
// shows every one of them and records the limit as degraded.
type Warning struct {
	Limit  string // a Limit* name
	Reason string // why it is not enforced
	Fix    string // what the user can do about it
}

func (w Warning) String() string {
	return fmt.Sprintf("%s limit not enforced: %s", w.Limit, w.Reason)
}

// Failure is one limit that could not be applied.
type Failure struct {
	Limit      string // a Limit* name
	Controller string // the controller it needs
	File       string // the cgroup file, or the cgroup directory when none was reached
	Reason     string // what went wrong, for people
	Fix        string // the exact fix
	Err        error  // the cause (a sentinel above, or the errno from the kernel)
}

// NotEnforcedError is Setup's error in Required mode when any limit cannot be
// applied. Nothing is left behind when it is returned.
type NotEnforcedError struct {
	Failures []Failure
}

func (e *NotEnforcedError) Error() string {
	parts := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		parts[i] = fmt.Sprintf("%s limit (%s): %s", f.Limit, f.File, f.Reason)
	}
	return "enforce cgroup limits: " + strings.Join(parts, "; ")
}

// Unwrap returns the causes, so errors.Is(err, ErrNotDelegated) works.
func (e *NotEnforcedError) Unwrap() []error {
	var out []error
	for _, f := range e.Failures {
		if f.Err != nil {
			out = append(out, f.Err)
		}
	}
	return out
}

// Hints are the distinct fixes, in order, for the "warden: hint:" lines.
func (e *NotEnforcedError) Hints() []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range e.Failures {
		if f.Fix != "" && !seen[f.Fix] {
			seen[f.Fix] = true
			out = append(out, f.Fix)
		}
	}
	return append(out, "or run with --limits=best-effort to run without the limits (each one is then reported as degraded)")
}

// The fixes we print. They are exact commands where one exists.
const (
	fixScope   = "run under a delegated scope: systemd-run --user --scope -p Delegate=yes warden ..."
	fixDropIn  = "delegate the controllers to user sessions: sudo mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf && sudo systemctl daemon-reload, then log in again"
	fixUnified = "boot with systemd.unified_cgroup_hierarchy=1 (pure cgroup v2) so the controller can be delegated; on this hybrid host it belongs to a cgroup v1 hierarchy, which cannot be delegated safely"
	fixMount   = "mount cgroup2 (boot with systemd.unified_cgroup_hierarchy=1); warden cannot use cgroup v1"
	fixKernel  = "use a kernel with this controller (CONFIG_MEMCG, CONFIG_CGROUP_PIDS, CONFIG_CGROUP_SCHED, CONFIG_BLK_CGROUP)"
	fixParent  = "the cgroup that delegates to you must enable the controller in its cgroup.subtree_control; under systemd: "
	fixSwap    = "boot with swapaccount=1 (cgroup swap accounting), or disable swap"
)

// decide applies mode to the failures of the requested limits: it fills
// Applied and returns the warnings (BestEffort) or the error (Required).
func decide(mode Mode, requested []string, failures []Failure) (map[string]string, []Warning, error) {
	applied := make(map[string]string, len(AllLimits))
	for _, name := range AllLimits {
		applied[name] = StateOff
	}
	if mode == Off {
		return applied, nil, nil
	}
	for _, name := range requested {
		applied[name] = StateEnforced
	}
	// One failure per limit: the first is the cause, later ones follow from it.
	var uniq []Failure
	seen := map[string]bool{}
	for _, f := range failures {
		if !seen[f.Limit] {
			seen[f.Limit] = true
			uniq = append(uniq, f)
		}
	}
	if len(uniq) == 0 {
		return applied, nil, nil
	}
	if mode == Required {
		return nil, nil, &NotEnforcedError{Failures: uniq}
	}
	warnings := make([]Warning, len(uniq))
	for i, f := range uniq {
		applied[f.Limit] = StateDegraded + ": " + f.Reason
		warnings[i] = Warning{Limit: f.Limit, Reason: f.Reason, Fix: f.Fix}
	}
	return applied, warnings, nil
}

// failAll makes one Failure per requested setting's limit, for a cause that
// stops every limit (no cgroup2, no delegation).
func failAll(l Limits, file, reason, fix string, cause error) []Failure {
	var out []Failure
	for _, s := range l.settings() {
		out = append(out, Failure{Limit: s.limit, Controller: s.controller, File: file, Reason: reason, Fix: fix, Err: cause})
	}
	return out
}
