package cgroup

import (
	"errors"
	"fmt"
	"path/filepath"
)

// Report is what `warden check` shows about cgroups. Probe creates nothing.
type Report struct {
	Mode  string // "unified", "hybrid", "v1" or "none"
	Mount string // the cgroup2 mount point, "" if none
	Own   string // the caller's cgroup, relative to Mount
	// Dir is the cgroup warden would put jails in: the caller's own cgroup, or
	// its parent when the caller sits in an evacuation leaf (init.scope,
	// warden-supervisor). "" when none is delegated.
	Dir       string
	Delegated bool
	// RootControllers are the controllers on the cgroup2 hierarchy at all;
	// Controllers those available in Dir (or at the root when not delegated).
	RootControllers, Controllers []string
	// Missing are the limit controllers (cpu, io, memory, pids) jails cannot
	// get here, each with the reason.
	Missing map[string]string
	// UserBus is the systemd user bus address that Setup would ask for a
	// scope when Dir is "", or the reason there is none.
	UserBus, UserBusErr string
	// Problem is the one-line verdict when something is missing, Fix the fix.
	Problem, Fix string
}

// Probe inspects the cgroup setup of the calling process.
func Probe() Report { return realHost().probe() }

func (h *host) probe() Report {
	loc, err := h.locate()
	r := Report{Mode: loc.Mode, Mount: loc.Mount, Own: loc.Own, Missing: map[string]string{}}
	if err != nil {
		r.Problem = fmt.Sprintf("no usable cgroup2: %v", err)
		if errors.Is(err, ErrNoCgroup2) {
			r.Fix = fixMount
		}
		for _, c := range []string{"cpu", "io", "memory", "pids"} {
			r.Missing[c] = "no cgroup2"
		}
		return r
	}
	r.RootControllers, _ = h.controllers(loc.Mount, "cgroup.controllers")
	parent := filepath.Dir(loc.Dir)
	switch {
	case (filepath.Base(loc.Dir) == evacName || filepath.Base(loc.Dir) == "init.scope") && loc.Own != "/" && h.delegated(parent):
		r.Dir = parent
	case h.delegated(loc.Dir):
		r.Dir = loc.Dir
	}
	r.Delegated = r.Dir != ""
	r.Controllers = r.RootControllers
	if r.Delegated {
		r.Controllers, _ = h.controllers(r.Dir, "cgroup.controllers")
	} else if addr, err := userBusAddress(h.getenv, h.uid); err != nil {
		r.UserBusErr = err.Error()
	} else {
		r.UserBus = addr
	}
	for _, c := range []string{"cpu", "io", "memory", "pids"} {
		switch {
		case !contains(r.RootControllers, c):
			reason, fix := h.whyMissingAtRoot(loc, c)
			r.Missing[c] = reason
			if r.Fix == "" {
				r.Problem, r.Fix = reason, fix
			}
		case r.Delegated && !contains(r.Controllers, c):
			r.Missing[c] = fmt.Sprintf("not delegated to %s", r.Dir)
		}
	}
	switch {
	case r.Problem != "":
	case !r.Delegated && r.UserBus == "":
		r.Problem = fmt.Sprintf("cgroup %s is not delegated to uid %d and there is no systemd user manager to ask: %s", loc.Dir, h.uid, r.UserBusErr)
		r.Fix = fixScope
	case len(r.Missing) > 0:
		r.Problem = fmt.Sprintf("controllers not delegated to %s: %v", r.Dir, keys(r.Missing))
		r.Fix = fixDropIn
	}
	return r
}

func keys(m map[string]string) []string {
	var out []string
	for _, c := range []string{"cpu", "io", "memory", "pids"} {
		if _, ok := m[c]; ok {
			out = append(out, c)
		}
	}
	return out
}
