package sandbox

import (
	"fmt"
	"sort"
	"strings"

	"github.com/warden-sandbox/warden/policies"
	"github.com/warden-sandbox/warden/sandbox/cgroup"
	"github.com/warden-sandbox/warden/seccomp"
	"github.com/warden-sandbox/warden/userns"
)

// MountSpec is a [[filesystem.mount]] entry of a policy.
type MountSpec struct {
	Type           string // "bind" or "tmpfs"
	Source, Target string
	ReadOnly       bool
	Optional       bool
	Size           int64
	Origin         string
}

// OptionsFromPolicy translates a resolved policy into run options; it is
// the one place that knows both shapes. argv is the command to run.
func OptionsFromPolicy(p *policies.Policy, argv []string) (Options, error) {
	o := Options{
		Argv:              argv,
		Tmpfs:             p.Filesystem.Tmpfs,
		Hide:              p.Filesystem.Hide,
		Hostname:          p.Process.Hostname,
		AsRoot:            p.Identity.User == "root",
		Net:               p.Network.Mode,
		Publish:           p.Network.Publish,
		AllowHostLoopback: p.Network.AllowHostLoopback,
		EnvPass:           p.Process.EnvPass,
		Timeout:           p.Process.Timeout,
		KillGrace:         p.Process.KillGrace,
		CapAdd:            p.Process.CapAdd,
		Policy:            PolicyRef{Name: p.Name, Source: p.Source, Hash: p.Hash},
		Origins:           p.Origin,
		Report:            p.Report.File,
	}
	// The working directory defaults to the current one (with a fallback
	// when the jail does not show it); only an explicit one must exist.
	o.TmpfsSize = p.Filesystem.TmpfsSize
	o.CacheSpecs = p.Filesystem.Caches
	if p.IsSet("filesystem.chdir") {
		o.Chdir = p.Filesystem.Chdir
	}
	// Only a map some policy or flag asked for: Resolve knows when the
	// default may give way (--net slirp4netns with a subuid range).
	if p.IsSet("identity.map") && p.Identity.Map != "" {
		m, err := userns.ParseMode(p.Identity.Map)
		if err != nil {
			return o, err
		}
		o.Map = m
	}
	origin := func(key string) string {
		if at, ok := p.Origin[key]; ok && strings.HasPrefix(at, "--") {
			return at
		} else if ok {
			return "policy " + at + ": " + key
		}
		return key
	}
	for i, r := range p.Filesystem.RO {
		o.RO = append(o.RO, PathMap{Src: r, Dst: r, Origin: origin(fmt.Sprintf("filesystem.ro[%d]", i))})
	}
	for i, r := range p.Filesystem.RW {
		o.RW = append(o.RW, PathMap{Src: r, Dst: r, Origin: origin(fmt.Sprintf("filesystem.rw[%d]", i))})
	}
	for i, r := range p.Filesystem.Overlay {
		o.Overlays = append(o.Overlays, PathMap{Src: r, Dst: r, Origin: origin(fmt.Sprintf("filesystem.overlay[%d]", i))})
	}
	o.Traces = append(o.Traces, p.Filesystem.Trace...)
	for i, m := range p.Filesystem.Mounts {
		o.Mounts = append(o.Mounts, MountSpec{Type: m.Type, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly,
			Optional: m.Optional, Size: m.Size, Origin: origin(fmt.Sprintf("filesystem.mount[%d]", i))})
	}
	keys := make([]string, 0, len(p.Process.Env))
	for k := range p.Process.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o.Env = append(o.Env, k+"="+p.Process.Env[k])
	}
	names := make([]string, 0, len(p.Process.Rlimits))
	for n := range p.Process.Rlimits {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := p.Process.Rlimits[n]
		rl, err := ParseRlimit(fmt.Sprintf("%s=%s:%s", n, limitStr(r.Soft), limitStr(r.Hard)))
		if err != nil {
			return o, err
		}
		o.Rlimits = append(o.Rlimits, rl)
	}
	o.Limits = cgroup.Limits{Memory: p.Limits.Memory, MemorySwap: p.Limits.MemorySwap, Pids: p.Limits.Pids,
		CPUs: p.Limits.CPUs, CPUWeight: p.Limits.CPUWeight, IOWeight: p.Limits.IOWeight}
	o.LimitsMode = cgroup.Off
	if p.Limits.Enforce != "" {
		m, err := cgroup.ParseMode(p.Limits.Enforce)
		if err != nil {
			return o, err
		}
		o.LimitsMode = m
	}
	o.Seccomp = p.Seccomp.Profile
	o.SeccompOpts = seccomp.Options{Allow: p.Seccomp.Allow, Deny: p.Seccomp.Deny, Errno: p.Seccomp.Errno,
		Action: p.Seccomp.Action, NestedUserns: p.Seccomp.NestedUserns, IOUring: p.Seccomp.IOUring, Ptrace: p.Seccomp.Ptrace, Audit: p.Seccomp.Audit}
	return o, nil
}

// PolicyEnv is the policies.Env of a host.
func PolicyEnv(h *Host, getenv func(string) (string, bool), configDirs []string, project, tmpdir string) policies.Env {
	return policies.Env{CWD: h.Cwd, Home: h.Home, User: h.User, UID: h.UID, GID: h.GID, TmpDir: tmpdir,
		Project: project, Getenv: getenv, ConfigDirs: configDirs}
}

// Project finds the git top level of dir (a directory with .git), else dir.
func Project(h *Host, dir string) string {
	for d := dir; d != "/" && d != "." && d != ""; d = parentDir(d) {
		if _, err := h.Lstat(d + "/.git"); err == nil {
			return d
		}
	}
	return dir
}

func parentDir(p string) string {
	i := strings.LastIndex(p, "/")
	if i <= 0 {
		return "/"
	}
	return p[:i]
}
