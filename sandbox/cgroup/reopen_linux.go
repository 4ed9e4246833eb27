package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Record is what a later process needs to act on a leaf that outlives the
// process that made it (an OCI container's: its init outlives `warden oci
// create`, and `pause`, `update` and `delete` are other processes). It is
// kept as JSON in the container's state; Reopen turns it back into a Leaf.
type Record struct {
	Dir     string   `json:"dir"`               // the leaf
	Base    string   `json:"base"`              // the delegated cgroup it is in
	Evac    string   `json:"evac,omitempty"`    // the evacuation leaf Setup made, if any
	Enabled []string `json:"enabled,omitempty"` // controllers Setup enabled in Base
	Scope   string   `json:"scope,omitempty"`   // the transient systemd unit Setup asked for, if any
}

// Record returns what Reopen needs to find this leaf again. Dir is "" when
// there is no leaf.
func (l *Leaf) Record() Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Record{Dir: l.dir, Base: l.base, Evac: l.evac, Enabled: slices.Clone(l.enabled), Scope: l.scope}
}

// Close releases the leaf's descriptor (FD) and leaves the cgroup as it is,
// for a later process to Reopen. The Leaf is then of no further use here.
func (l *Leaf) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
	l.removed = true
}

// Reopen returns the Leaf r records, made by Setup in another process, so
// that Update, Procs, Frozen, Kill and Remove act on it. Because r comes
// from a file, it is checked first: the leaf must be a direct child of its
// base, both inside a mounted cgroup2 hierarchy, and the evacuation leaf,
// if any, the one Setup names; otherwise Remove could be made to kill and
// remove another cgroup. A leaf already gone yields a Leaf with Path() "",
// whose Remove still undoes the evacuation (if that is not gone too).
func Reopen(r Record) (*Leaf, error) { return realHost().reopen(r) }

func (h *host) reopen(r Record) (*Leaf, error) {
	bad := func(why string) (*Leaf, error) {
		return nil, fmt.Errorf("reopen cgroup %s: %s", r.Dir, why)
	}
	clean := func(p string) bool { return filepath.IsAbs(p) && filepath.Clean(p) == p }
	if !clean(r.Dir) || !clean(r.Base) || filepath.Dir(r.Dir) != r.Base || !validName(filepath.Base(r.Dir)) {
		return bad("not a leaf directly below its base " + r.Base)
	}
	if r.Evac != "" && r.Evac != filepath.Join(r.Base, evacName) {
		return bad("unexpected evacuation leaf " + r.Evac)
	}
	for _, c := range r.Enabled {
		if !validName(c) {
			return bad(fmt.Sprintf("bad controller name %q", c))
		}
	}
	mounts, err := h.mounts()
	if err != nil {
		return nil, fmt.Errorf("reopen cgroup %s: %w", r.Dir, err)
	}
	inside := false
	for _, m := range mounts {
		if m.FSType == "cgroup2" && strings.HasPrefix(r.Base, filepath.Clean(m.Mountpoint)+"/") {
			inside = true
		}
	}
	if !inside {
		return bad("not inside a mounted cgroup2 hierarchy")
	}
	l := &Leaf{h: h, dir: r.Dir, base: r.Base, evac: r.Evac, enabled: slices.Clone(r.Enabled), scope: r.Scope, fd: -1}
	// What an earlier Remove took away already is not removed again.
	if _, err := h.ops.ReadFile(filepath.Join(r.Dir, "cgroup.events")); errors.Is(err, os.ErrNotExist) {
		l.dir = ""
	}
	if _, err := h.ops.ReadFile(filepath.Join(r.Evac, "cgroup.events")); r.Evac != "" && errors.Is(err, os.ErrNotExist) {
		l.evac = ""
	}
	return l, nil
}

// Update writes new limits into an existing leaf, with the same files and
// values Setup writes: only the limits set in lim change (memory also sets
// memory.oom.group and memory.swap.max, as in Setup). A limit that cannot
// be written makes Update fail with a *NotEnforcedError; the limits before
// it in Limits' order may have been written.
func (l *Leaf) Update(lim Limits) error {
	if l.dir == "" {
		return ErrNoLeaf
	}
	if err := lim.Validate(); err != nil {
		return err
	}
	if failures := l.h.apply(l.dir, lim.settings()); len(failures) > 0 {
		return &NotEnforcedError{Failures: failures}
	}
	return nil
}

// Procs lists the processes in the leaf and in any cgroup below it.
func (l *Leaf) Procs() ([]int, error) {
	if l.dir == "" {
		return nil, ErrNoLeaf
	}
	return l.allProcs(l.dir)
}

// Frozen reports whether cgroup.events says "frozen 1": the leaf's
// cgroup.freeze is set and every process in it has stopped.
func (l *Leaf) Frozen() bool {
	if l.dir == "" {
		return false
	}
	data, err := l.h.ops.ReadFile(filepath.Join(l.dir, "cgroup.events"))
	return err == nil && parseKeyed(data)["frozen"] == 1
}
