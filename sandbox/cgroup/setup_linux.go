package cgroup

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// evacName is the leaf warden moves the processes of its own cgroup into
// before it enables controllers there. systemd's DelegateSubgroup= uses
// init.scope for the same purpose; a cgroup of either name whose parent is
// delegated counts as already evacuated.
const evacName = "warden-supervisor"

// accounting are the controllers enabled when available even if no limit
// needs them, so that Stats has memory.peak, pids.peak and cpu.stat figures.
var accounting = []string{"cpu", "memory", "pids"}

// Setup prepares the cgroup of one jail: it finds a delegated cgroup2 subtree
// (the caller's own cgroup, or a transient systemd user scope with
// Delegate=yes), moves the caller's processes into a leaf so that controllers
// can be enabled (the kernel's no-internal-process rule), creates the jail
// leaf base/name and writes the limits into it.
//
// In Required mode any requested limit that cannot be applied makes Setup fail
// with a *NotEnforcedError; in BestEffort mode it returns one Warning per such
// limit. In Off mode it creates nothing. On error nothing is left behind.
// When no cgroup could be had (and the mode allows it), the Leaf has Path() ""
// and its Kill/Remove do nothing.
//
// Preconditions:
//   - Called on the host side, as the real user, before any namespace is
//     created (D-Bus authenticates by uid; inside a user namespace it fails).
func Setup(l Limits, mode Mode, name string) (*Leaf, []Warning, error) {
	return realHost().setup(l, mode, name)
}

func (h *host) setup(l Limits, mode Mode, name string) (*Leaf, []Warning, error) {
	if _, err := ParseMode(string(mode)); err != nil {
		return nil, nil, err
	}
	if err := l.Validate(); err != nil {
		return nil, nil, err
	}
	if name == "" {
		name = "warden-" + strconv.Itoa(h.pid)
	}
	if !validName(name) {
		return nil, nil, fmt.Errorf("create cgroup %q: name must be letters, digits, '-', '_' or '.'", name)
	}
	requested := l.Requested()
	if mode == Off {
		applied, _, _ := decide(Off, requested, nil)
		return &Leaf{h: h, fd: -1, applied: applied}, nil, nil
	}
	b, failures := h.findBase(l, name)
	var leaf *Leaf
	// In Required mode a limit that failed already decides: nothing is
	// created (no evacuation, no leaf) only to be removed again.
	if b != nil && !(mode == Required && len(failures) > 0) {
		unlock := lockDir(b.dir)
		var more []Failure
		leaf, more = h.build(b, l, name, failures)
		unlock()
		failures = append(failures, more...)
	}
	applied, warnings, err := decide(mode, requested, failures)
	if err != nil || (leaf != nil && leaf.dir == "") {
		if leaf != nil {
			if rerr := leaf.Remove(); rerr != nil && err != nil {
				err = errors.Join(err, fmt.Errorf("clean up after failed setup: %w", rerr))
			}
		}
		if err != nil {
			return nil, nil, err
		}
		leaf = nil
	}
	if leaf == nil {
		leaf = &Leaf{h: h, fd: -1}
	}
	leaf.applied = applied
	return leaf, warnings, nil
}

// base is the delegated cgroup the jail leaf goes into.
type base struct {
	loc   location
	dir   string
	root  bool   // dir is the hierarchy root, exempt from the no-internal-process rule
	scope string // the transient unit we asked systemd for, if any
}

// findBase finds the delegated cgroup, and the limits that cannot be applied
// whatever happens next (controllers missing at the root or not delegated).
func (h *host) findBase(l Limits, name string) (*base, []Failure) {
	loc, err := h.locate()
	if errors.Is(err, ErrNoCgroup2) {
		reason := "no cgroup2 file system is mounted"
		if loc.Mode == "v1" {
			reason += " (this host uses cgroup v1 only)"
		}
		return nil, failAll(l, "/sys/fs/cgroup", reason, fixMount, ErrNoCgroup2)
	}
	if err != nil {
		return nil, failAll(l, h.procSelfCgroup, err.Error(), "", err)
	}
	var failures []Failure
	failed := map[string]bool{}
	fail := func(s setting, file, reason, fix string, cause error) {
		failures = append(failures, Failure{Limit: s.limit, Controller: s.controller, File: file, Reason: reason, Fix: fix, Err: cause})
		failed[s.limit] = true
	}
	rootCtrls, _ := h.controllers(loc.Mount, "cgroup.controllers")
	for _, s := range l.settings() {
		if !contains(rootCtrls, s.controller) {
			reason, fix := h.whyMissingAtRoot(loc, s.controller)
			fail(s, s.file, reason, fix, ErrControllerUnavailable)
		}
	}

	b := &base{loc: loc}
	parent := filepath.Dir(loc.Dir)
	switch {
	case (filepath.Base(loc.Dir) == evacName || filepath.Base(loc.Dir) == "init.scope") &&
		loc.Own != "/" && h.delegated(parent):
		b.dir = parent
	case h.delegated(loc.Dir):
		b.dir = loc.Dir
	case len(failed) < len(l.Requested()):
		// Some limit could still be applied, so ask systemd for a scope.
		b.dir, b.scope, err = h.scope(loc, name)
		if err != nil {
			reason := fmt.Sprintf("cgroup %s is not delegated to uid %d (its cgroup.procs is not writable), and no delegated scope could be made: %v", loc.Dir, h.uid, err)
			for _, s := range l.settings() {
				if !failed[s.limit] {
					fail(s, loc.Dir, reason, fixScope, fmt.Errorf("%w: %w", ErrNotDelegated, err))
				}
			}
			return nil, failures
		}
		if loc, err = h.locate(); err == nil {
			b.loc = loc
		}
	default:
		return nil, failures
	}
	b.root = b.dir == filepath.Clean(loc.Mount)
	avail, _ := h.controllers(b.dir, "cgroup.controllers")
	for _, s := range l.settings() {
		if !failed[s.limit] && !contains(avail, s.controller) {
			fail(s, filepath.Join(b.dir, "cgroup.controllers"),
				fmt.Sprintf("the %s controller is not delegated to %s (its cgroup.controllers has only %q)", s.controller, b.dir, strings.Join(avail, " ")),
				fixParent+fixDropIn, ErrControllerUnavailable)
		}
	}
	return b, failures
}

// scope asks the systemd user manager for a transient scope with
// Delegate=yes holding the caller, and returns its cgroup directory.
func (h *host) scope(loc location, name string) (dir, unit string, err error) {
	addr, err := userBusAddress(h.getenv, h.uid)
	if err != nil {
		return "", "", err
	}
	unit = scopeUnitName(name)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.startScope(ctx, addr, unit, h.pid); err != nil {
		return "", "", err
	}
	now, err := h.locate()
	if err != nil {
		return "", "", err
	}
	if !h.delegated(now.Dir) {
		return "", "", fmt.Errorf("scope %s: cgroup %s is not writable after Delegate=yes", unit, now.Dir)
	}
	return now.Dir, unit, nil
}

// build evacuates the base if it must, enables the controllers, creates the
// leaf and writes the limits. It returns the leaf (with dir "" when it could
// not be created) and the limits that failed. Skips limits already failed.
func (h *host) build(b *base, l Limits, name string, prior []Failure) (*Leaf, []Failure) {
	leaf := &Leaf{h: h, base: b.dir, scope: b.scope, fd: -1}
	failed := map[string]bool{}
	for _, f := range prior {
		failed[f.Limit] = true
	}
	var failures []Failure
	var todo []setting
	for _, s := range l.settings() {
		if !failed[s.limit] {
			todo = append(todo, s)
		}
	}
	failFor := func(pred func(setting) bool, file, reason, fix string, cause error) {
		var keep []setting
		for _, s := range todo {
			if pred(s) {
				failures = append(failures, Failure{Limit: s.limit, Controller: s.controller, File: file, Reason: reason, Fix: fix, Err: cause})
			} else {
				keep = append(keep, s)
			}
		}
		todo = keep
	}
	all := func(setting) bool { return true }

	dir := filepath.Join(b.dir, name)
	// Refuse a taken name before evacuating: afterwards the evacuation could
	// not be undone while the other jail's leaf exists.
	if subs, _ := h.ops.Subdirs(b.dir); contains(subs, name) {
		failFor(all, dir, fmt.Sprintf("create cgroup %s: it exists (a jail of this name is running, or a crashed run left it: rmdir it)", dir), "", unix.EEXIST)
		return leaf, failures
	}
	avail, _ := h.controllers(b.dir, "cgroup.controllers")
	enabled, _ := h.controllers(b.dir, "cgroup.subtree_control")
	var want []string
	for _, s := range todo {
		if !contains(want, s.controller) {
			want = append(want, s.controller)
		}
	}
	var toEnable []string
	for _, c := range append(want, accounting...) {
		if contains(avail, c) && !contains(enabled, c) && !contains(toEnable, c) {
			toEnable = append(toEnable, c)
		}
	}
	if len(toEnable) > 0 && !b.root {
		if err := h.evacuate(leaf); err != nil {
			failFor(all, filepath.Join(b.dir, "cgroup.procs"), err.Error(), fixScope, err)
			toEnable = nil // every write would be EBUSY
		}
	}
	subtree := filepath.Join(b.dir, "cgroup.subtree_control")
	for _, c := range toEnable {
		err := h.writeRetry(subtree, "+"+c)
		if err == nil {
			leaf.enabled = append(leaf.enabled, c)
			continue
		}
		fix := fixParent + fixDropIn
		if errors.Is(err, unix.EBUSY) {
			fix = "move the other processes out of " + b.dir + " (cgroup v2 allows controllers only in cgroups without processes), or " + fixScope
		}
		failFor(func(s setting) bool { return s.controller == c }, subtree,
			fmt.Sprintf("enable the %s controller: write %s: %v", c, subtree, err), fix, err)
	}

	if err := h.ops.Mkdir(dir); err != nil {
		reason := fmt.Sprintf("create cgroup %s: %v", dir, err)
		if errors.Is(err, unix.EEXIST) {
			reason += " (a jail of this name is running, or a crashed run left it: rmdir it)"
		}
		failFor(all, dir, reason, "", err)
		return leaf, failures
	}
	leaf.dir = dir
	return leaf, append(failures, h.apply(dir, todo)...)
}

// apply writes settings into the leaf dir and returns the limits that
// failed, each with its reason and fix. Setup uses it on a new leaf,
// Leaf.Update on a leaf that exists.
func (h *host) apply(dir string, todo []setting) []Failure {
	var failures []Failure
	for _, s := range todo {
		path := filepath.Join(dir, s.file)
		err := h.ops.WriteFile(path, s.value)
		if err == nil {
			continue
		}
		reason, fix := fmt.Sprintf("write %q to %s: %v", s.value, path, err), ""
		switch {
		case errors.Is(err, unix.ENOENT) && s.file == "memory.swap.max" && s.value == "0" && h.swapless():
			continue // no swap accounting, but no swap either: nothing to limit
		case errors.Is(err, unix.ENOENT) && s.file == "memory.swap.max":
			reason, fix = "memory.swap.max does not exist (no swap accounting) and the host has swap", fixSwap
		case errors.Is(err, unix.ENOENT):
			reason = fmt.Sprintf("%s does not exist: the %s controller is not enabled for %s", path, s.controller, dir)
			fix = fixParent + fixDropIn
		case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
			reason, fix = fmt.Sprintf("%s is not writable: %v", path, err), fixScope
		}
		failures = append(failures, Failure{Limit: s.limit, Controller: s.controller, File: path, Reason: reason, Fix: fix, Err: err})
	}
	return failures
}

// evacuate moves every process of the base cgroup into base/warden-supervisor,
// because the kernel refuses to enable a controller in cgroup.subtree_control
// while the cgroup itself has processes (cgroup-v2.rst, "No Internal Process
// Constraint"); otherwise every write of "+memory" would fail with EBUSY.
// Processes of other owners cannot be moved; enabling then fails and says so.
func (h *host) evacuate(leaf *Leaf) error {
	pids, err := h.procs(leaf.base)
	if err != nil {
		return fmt.Errorf("read %s/cgroup.procs: %w", leaf.base, err)
	}
	if len(pids) == 0 {
		return nil
	}
	evac := filepath.Join(leaf.base, evacName)
	switch err := h.ops.Mkdir(evac); {
	case err == nil:
		leaf.evac = evac
	case !errors.Is(err, unix.EEXIST):
		return fmt.Errorf("create cgroup %s: %w", evac, err)
	}
	for _, pid := range pids {
		err := h.writeRetry(filepath.Join(evac, "cgroup.procs"), strconv.Itoa(pid))
		if err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("move process %d to %s: %w", pid, evac, err)
		}
	}
	return nil
}

// lockDir takes an exclusive flock(2) on a cgroup directory, so that two
// wardens sharing a delegated cgroup do not race between evacuating, enabling
// controllers and (at the end) disabling them. It returns the unlock.
func lockDir(dir string) func() {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return func() {}
	}
	for unix.Flock(fd, unix.LOCK_EX) == unix.EINTR {
	}
	return func() { unix.Close(fd) }
}
