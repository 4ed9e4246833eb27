package policies

import (
	"fmt"
	"strings"
)

// merge lays over on top of base. The rule, for extends and for flags alike:
//   - scalars in over override base;
//   - lists append, dropping values already present;
//   - tables (process.env, process.rlimits) merge per entry, over winning;
//   - keys named in over's replace = [...] first drop what base said for them;
//   - description is never inherited.
func merge(base, over *layer) *layer {
	out := newLayer(over.source)
	out.description = over.description
	older := func(it item) item { it.age++; return it }
	for k, it := range base.scalars {
		out.scalars[k] = older(it)
	}
	for k, items := range base.lists {
		for _, it := range items {
			out.lists[k] = append(out.lists[k], older(it))
		}
	}
	for k, m := range base.maps {
		out.maps[k] = map[string]item{}
		for n, it := range m {
			out.maps[k][n] = older(it)
		}
	}
	for _, r := range over.replace {
		delete(out.lists, r.v.(string))
		delete(out.maps, r.v.(string))
	}
	for k, it := range over.scalars {
		out.scalars[k] = it
	}
	for k, items := range over.lists {
	next:
		for _, it := range items {
			for i, have := range out.lists[k] {
				if have.v == it.v {
					// Asked for again: it stays where it was in the
					// list, and counts as set here (a flag that repeats
					// a policy entry is the user's explicit request).
					out.lists[k][i] = it
					continue next
				}
			}
			out.lists[k] = append(out.lists[k], it)
		}
	}
	for k, m := range over.maps {
		if out.maps[k] == nil {
			out.maps[k] = map[string]item{}
		}
		for n, it := range m {
			out.maps[k][n] = it
		}
	}
	return out
}

// resolve turns a merged layer into a validated Policy.
func resolve(m *layer, env Env) (*Policy, error) {
	p := &Policy{Origin: map[string]string{}, merged: m}
	defaults(p, env)
	if m.description != nil {
		p.Description = m.description.v.(string)
	}
	for _, f := range schema {
		switch f.kind {
		case kList:
			for i, it := range m.lists[f.key] {
				p.set(f.key, it.v)
				p.Origin[index(f.key, i)] = it.where()
			}
		case kMounts:
			for i, it := range m.lists[f.key] {
				p.Filesystem.Mounts = append(p.Filesystem.Mounts, it.v.(Mount))
				p.Origin[index(f.key, i)] = it.where()
			}
		case kEnvMap, kRlimits:
			for n, it := range m.maps[f.key] {
				if f.kind == kEnvMap {
					if p.Process.Env == nil {
						p.Process.Env = map[string]string{}
					}
					p.Process.Env[n] = it.v.(string)
				} else {
					if p.Process.Rlimits == nil {
						p.Process.Rlimits = map[string]Rlimit{}
					}
					p.Process.Rlimits[n] = it.v.(Rlimit)
				}
				p.Origin[child(f.key, n)] = it.where()
			}
		default:
			if it, ok := m.scalars[f.key]; ok {
				p.set(f.key, it.v)
				p.Origin[f.key] = it.where()
			}
		}
	}
	l := p.Limits
	anyLimit := l.Memory != 0 || l.MemorySwap != 0 || l.Pids != 0 || l.CPUs != 0 || l.CPUWeight != 0 || l.IOWeight != 0
	if _, set := m.scalars["limits.enforce"]; !set && anyLimit {
		p.Limits.Enforce = "required"
	}
	if err := validate(p, m); err != nil {
		return nil, err
	}
	p.Hash = hashOf(p)
	return p, nil
}

func errAt(it item, msg, hint string) *PosError {
	return &PosError{File: it.at.file, Line: it.at.line, Col: it.at.col, Key: it.key, Msg: msg, Hint: hint}
}

// validate finds contradictions between keys, which no single value shows.
func validate(p *Policy, m *layer) error {
	if err := validatePaths(p, m); err != nil {
		return err
	}
	l := p.Limits
	if l.Enforce == "off" {
		for _, k := range []string{"limits.memory", "limits.memory_swap", "limits.pids", "limits.cpus", "limits.cpu_weight", "limits.io_weight"} {
			if it, ok := m.scalars[k]; ok && it.v != int64(0) {
				return errAt(it, fmt.Sprintf("is set, but limits.enforce is \"off\" (%s)", m.scalars["limits.enforce"].where()),
					`remove the limit, or set limits.enforce = "required" or "best-effort"`)
			}
		}
	}
	if mode := p.Network.Mode; mode == "none" || mode == "host" {
		if items := m.lists["network.publish"]; len(items) > 0 {
			return errAt(items[0], fmt.Sprintf("publishes a port, but network.mode is %q", mode),
				`ports are published with mode = "pasta", "slirp4netns" or "auto"`)
		}
		if it, ok := m.scalars["network.allow_host_loopback"]; ok && p.Network.AllowHostLoopback {
			return errAt(it, fmt.Sprintf("has no meaning with network.mode = %q", mode),
				`remove it, or use mode = "pasta", "slirp4netns" or "auto"`)
		}
	}
	if p.Seccomp.Profile == "none" {
		for _, k := range []string{"seccomp.allow", "seccomp.deny"} {
			if items := m.lists[k]; len(items) > 0 {
				return errAt(items[0], `changes a profile, but seccomp.profile is "none"`, `remove it, or use profile = "default"`)
			}
		}
	}
	for _, a := range m.lists["seccomp.allow"] {
		for _, d := range m.lists["seccomp.deny"] {
			if a.v == d.v {
				if a.age < d.age {
					return errAt(a, fmt.Sprintf("%q is also in seccomp.deny (%s)", a.v, d.where()), "keep it in one of them")
				}
				return errAt(d, fmt.Sprintf("%q is also in seccomp.allow (%s)", d.v, a.where()), "keep it in one of them")
			}
		}
	}
	return nil
}

// pathListKeys are the filesystem lists, in the order they are checked.
var pathListKeys = []string{"filesystem.ro", "filesystem.rw", "filesystem.tmpfs", "filesystem.hide"}

func validatePaths(p *Policy, m *layer) error {
	type use struct {
		list string
		it   item
	}
	seen := map[string]use{}
	for _, k := range pathListKeys {
		for _, it := range m.lists[k] {
			path := it.v.(string)
			if path == "/" && (k == "filesystem.hide" || k == "filesystem.tmpfs") {
				return errAt(it, fmt.Sprintf("%q would hide the whole file system", path), `list what to hide or replace, below "/"`)
			}
			if u, dup := seen[path]; dup {
				here, there, list := it, u.it, u.list
				if there.age < here.age {
					here, there, list = there, here, k
				}
				// Two entries of built-in policies can only meet because
				// of where warden started (${PROJECT} is $HOME, say): the
				// user did nothing wrong and must not edit a built-in.
				if strings.HasPrefix(here.at.file, "builtin:") && strings.HasPrefix(there.at.file, "builtin:") {
					return &PosError{File: here.at.file, Line: here.at.line, Col: here.at.col, Key: here.key, Here: true,
						Msg: fmt.Sprintf("started in %s, which this built-in policy both lists in %s and in %s (%s): run it from a project directory instead", path, strings.TrimPrefix(k, "filesystem."), strings.TrimPrefix(list, "filesystem."), there.where())}
				}
				return errAt(here, fmt.Sprintf("%q is also in %s (%s)", path, list, there.where()),
					"keep it in one list; to drop an inherited list, add its key to replace = [...]")
			}
			seen[path] = use{k, it}
		}
	}
	for _, it := range m.lists["filesystem.mount"] {
		t := it.v.(Mount).Target
		if u, dup := seen[t]; dup {
			return errAt(it, fmt.Sprintf("target %q is also in %s (%s)", t, u.list, u.it.where()), "mount each path once")
		}
		seen[t] = use{"filesystem.mount", it}
	}
	// The working directory must not end up under a hidden path, unless a
	// deeper entry makes it visible again.
	chdir := p.Filesystem.Chdir
	deepest, du := "", use{}
	for path, u := range seen {
		if (path == "/" || chdir == path || strings.HasPrefix(chdir, path+"/")) && len(path) > len(deepest) {
			deepest, du = path, u
		}
	}
	if du.list == "filesystem.hide" {
		if it, ok := m.scalars["filesystem.chdir"]; ok {
			return errAt(it, fmt.Sprintf("%q is hidden by %s (%s)", chdir, du.it.key, du.it.where()), "pick a visible directory")
		}
		return errAt(du.it, fmt.Sprintf("hides the working directory %q", chdir),
			"set filesystem.chdir to a visible directory, or run warden from another directory")
	}
	return nil
}
