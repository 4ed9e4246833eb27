package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/warden-sandbox/warden/sandbox/cgroup"
	"github.com/warden-sandbox/warden/seccomp"
	"github.com/warden-sandbox/warden/userns"
)

// PlanFromSpec translates an OCI runtime config (a bundle's config.json)
// into a Plan, the same Plan `warden run` builds from a policy: one launch
// path. stateDir is the container's state directory, which holds the
// start gate (Plan.Gate). What warden cannot do as the config asks is an
// error naming the config key, or a warning where the config only loses
// something that is not a protection.
func PlanFromSpec(spec *specs.Spec, bundle, stateDir string) (*Plan, []Warning, error) {
	if !strings.HasPrefix(spec.Version, "1.") {
		return nil, nil, Usagef("config.json: ociVersion %q: unknown version; warden runs configs of the OCI runtime spec 1.x", spec.Version)
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return nil, nil, Usagef("config.json: root.path is missing; name the container's root file system")
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if fi, err := os.Stat(rootfs); err != nil || !fi.IsDir() {
		return nil, nil, Usagef("config.json: root.path %s: not a directory; the bundle must hold the root file system", spec.Root.Path)
	}
	proc := spec.Process
	if proc == nil || len(proc.Args) == 0 {
		return nil, nil, Usagef("config.json: process.args is empty; name the command to run")
	}
	if proc.Cwd == "" || !path.IsAbs(proc.Cwd) {
		return nil, nil, Usagef("config.json: process.cwd %q must be an absolute path", proc.Cwd)
	}
	if spec.Linux == nil {
		return nil, nil, Usagef("config.json: no \"linux\" section; warden runs Linux containers")
	}
	var warns []Warning
	// The root is attached over root.path itself before pivot_root, as
	// runc mounts it onto itself: a createContainer hook finds the
	// container's root, with its mounts, where the config says it is.
	p := &Plan{Argv: proc.Args, Env: proc.Env, Cwd: path.Clean(proc.Cwd), Hostname: spec.Hostname, Scratch: filepath.Clean(rootfs), Net: "none",
		Gate: stateDir, MapMode: "oci", SeccompName: "none", LimitsMode: cgroup.Off}
	if err := ociNamespaces(spec.Linux, p); err != nil {
		return nil, nil, err
	}
	if err := ociIdentity(spec, p); err != nil {
		return nil, nil, err
	}
	ops, w, err := ociMounts(spec, bundle, rootfs, p)
	if err != nil {
		return nil, nil, err
	}
	p.Mounts, warns = ops, append(warns, w...)
	for _, r := range proc.Rlimits {
		name := strings.ToLower(strings.TrimPrefix(r.Type, "RLIMIT_"))
		rl, err := ParseRlimit(fmt.Sprintf("%s=%d:%d", name, r.Soft, r.Hard))
		if err != nil {
			return nil, nil, Usagef("config.json: process.rlimits %s: %v", r.Type, err)
		}
		p.Rlimits = append(p.Rlimits, rl)
	}
	if c := proc.Capabilities; c != nil {
		var names []string
		for _, n := range c.Effective {
			if slices.Contains(c.Bounding, n) {
				names = append(names, n)
			}
		}
		if p.Caps, err = resolveCaps(names); err != nil {
			return nil, nil, Usagef("config.json: process.capabilities: %v", err)
		}
	}
	if !proc.NoNewPrivileges {
		warns = append(warns, Warning{What: "process.noNewPrivileges is false", Reason: "warden always sets no_new_privs: setuid programs in the container gain nothing"})
	}
	if err := ociSeccomp(spec.Linux.Seccomp, p); err != nil {
		return nil, nil, err
	}
	ociResources(spec.Linux, p)
	// prestart, createRuntime, poststart and poststop run in the runtime's
	// namespaces (cmd/warden: oci_hooks.go); createContainer and
	// startContainer inside the container, by the jail's programs.
	if h := spec.Hooks; h != nil && len(h.CreateContainer)+len(h.StartContainer) > 0 {
		ch := &ContainerHooks{}
		if ch.Create, err = ociHooks("createContainer", h.CreateContainer, nil); err != nil {
			return nil, nil, err
		}
		if ch.Start, err = ociHooks("startContainer", h.StartContainer, proc.Env); err != nil {
			return nil, nil, err
		}
		p.Hooks = ch
	}
	return p, append(warns, p.warnings...), nil
}

// ContainerHooks are the hooks of an OCI config that run inside the
// container, in its namespaces (Plan.Hooks). createContainer hooks are run
// by init once every mount is made, before pivot_root: their path is
// resolved in the runtime's file system (the host's, with the container's
// root attached over root.path), their current directory is the
// container's root, and they have init's credentials. startContainer
// hooks are run by the container's process after `start`, right before
// its execve: in the container's root, with its uid, capabilities,
// no_new_privs and seccomp filter (as runc runs them). Each gets the
// state on stdin, its args and env, and is killed after its timeout; one
// that fails fails the operation.
type ContainerHooks struct {
	Create, Start []Hook
	// State renders the container's state JSON for the hooks' stdin, once
	// init's pid (in warden's pid namespace) is known; status is
	// "creating" for createContainer and "created" for startContainer
	// hooks, as runc has them.
	State func(status string, pid int) []byte
	// Runtime, when set, runs the runtime's own hooks that come before
	// createContainer (prestart, createRuntime) once init's mounts are
	// made; Create fails with its error. It is called only when there
	// are createContainer hooks; otherwise the caller runs them once
	// Create has returned.
	Runtime func(pid int) error
}

// Hook is one hook of an OCI config.
type Hook struct {
	Path      string
	Args, Env []string
	Timeout   time.Duration // 0: none
}

// ociHooks checks and translates the hooks of one kind; a hook without
// env gets defEnv (runc gives startContainer hooks process.env).
func ociHooks(kind string, hooks []specs.Hook, defEnv []string) ([]Hook, error) {
	var out []Hook
	for i, h := range hooks {
		if !path.IsAbs(h.Path) {
			return nil, Usagef("config.json: hooks.%s[%d].path %q must be an absolute path", kind, i, h.Path)
		}
		hk := Hook{Path: h.Path, Args: h.Args, Env: h.Env}
		if len(hk.Args) == 0 {
			hk.Args = []string{h.Path}
		}
		if hk.Env == nil {
			hk.Env = defEnv
		}
		if h.Timeout != nil {
			if *h.Timeout <= 0 {
				return nil, Usagef("config.json: hooks.%s[%d].timeout %d must be greater than zero", kind, i, *h.Timeout)
			}
			hk.Timeout = time.Duration(*h.Timeout) * time.Second
		}
		out = append(out, hk)
	}
	return out, nil
}

var nsFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace: syscall.CLONE_NEWPID, specs.NetworkNamespace: syscall.CLONE_NEWNET, specs.MountNamespace: syscall.CLONE_NEWNS,
	specs.IPCNamespace: syscall.CLONE_NEWIPC, specs.UTSNamespace: syscall.CLONE_NEWUTS, specs.UserNamespace: syscall.CLONE_NEWUSER,
	specs.CgroupNamespace: syscall.CLONE_NEWCGROUP,
}

func ociNamespaces(l *specs.Linux, p *Plan) error {
	for _, ns := range l.Namespaces {
		flag, ok := nsFlags[ns.Type]
		if !ok {
			return Usagef("config.json: linux.namespaces: type %q is not supported", ns.Type)
		}
		if ns.Path == "" {
			p.Cloneflags |= flag
			continue
		}
		switch ns.Type {
		case specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace:
			p.JoinNS = append(p.JoinNS, NSJoin{Path: ns.Path, Flag: flag, Type: string(ns.Type)})
		default:
			return Usagef("config.json: linux.namespaces: joining a %s namespace by path (%s) is not supported; warden joins network, ipc and uts namespaces by path", ns.Type, ns.Path)
		}
	}
	if p.Cloneflags&syscall.CLONE_NEWNS == 0 {
		return Usagef("config.json: linux.namespaces has no \"mount\" namespace; warden builds every container in a mount namespace of its own")
	}
	if p.Cloneflags&syscall.CLONE_NEWPID == 0 {
		return Usagef("config.json: linux.namespaces has no \"pid\" namespace; warden's init reaps and kills the container's processes in a pid namespace of its own")
	}
	return nil
}

// ociIdentity sets the ID maps (a new user namespace) and the payload's
// ids.
func ociIdentity(spec *specs.Spec, p *Plan) error {
	u := spec.Process.User
	p.Maps.InsideUID, p.Maps.InsideGID = int(u.UID), int(u.GID)
	if p.Cloneflags&syscall.CLONE_NEWUSER == 0 {
		if len(spec.Linux.UIDMappings)+len(spec.Linux.GIDMappings) > 0 {
			return Usagef("config.json: linux.uidMappings without a \"user\" namespace")
		}
		p.SetIDs = u.UID != uint32(os.Getuid()) || u.GID != uint32(os.Getgid())
		return nil
	}
	if len(spec.Linux.UIDMappings) == 0 || len(spec.Linux.GIDMappings) == 0 {
		return Usagef("config.json: a \"user\" namespace needs linux.uidMappings and linux.gidMappings")
	}
	conv := func(ms []specs.LinuxIDMapping) []userns.IDMap {
		var out []userns.IDMap
		for _, m := range ms {
			out = append(out, userns.IDMap{Inside: int(m.ContainerID), Host: int(m.HostID), Count: int(m.Size)})
		}
		return out
	}
	p.Maps.UID, p.Maps.GID = conv(spec.Linux.UIDMappings), conv(spec.Linux.GIDMappings)
	single := len(p.Maps.UID) == 1 && p.Maps.UID[0].Count == 1 && p.Maps.UID[0].Host == os.Getuid() &&
		len(p.Maps.GID) == 1 && p.Maps.GID[0].Count == 1 && p.Maps.GID[0].Host == os.Getgid()
	p.Maps.Ranges = !single
	// Who the caller becomes in the new namespace is decided by the map;
	// another uid of the config is set in the payload.
	self := -1
	for _, m := range p.Maps.UID {
		if os.Getuid() >= m.Host && os.Getuid() < m.Host+m.Count {
			self = m.Inside + os.Getuid() - m.Host
		}
	}
	p.SetIDs = self != int(u.UID) || !single
	return nil
}

func ociSeccomp(s *specs.LinuxSeccomp, p *Plan) error {
	if s == nil {
		return nil
	}
	data, err := json.Marshal(s)
	if err != nil {
		return bug(err)
	}
	var uts syscall.Utsname
	_ = syscall.Uname(&uts)
	rel := make([]byte, 0, len(uts.Release))
	for _, c := range uts.Release {
		if c == 0 {
			break
		}
		rel = append(rel, byte(c))
	}
	prof, err := seccomp.ParseJSON("config.json linux.seccomp", data, seccomp.ImportEnv{Kernel: string(rel), Arch: runtime.GOARCH, FirstRuleWins: true})
	if err != nil {
		return Usagef("%v", err)
	}
	if prof.Audit {
		return Usagef("config.json: linux.seccomp asks for a notify listener, which warden does not pass on")
	}
	for _, w := range prof.Warnings {
		p.warnings = append(p.warnings, Warning{What: "seccomp", Reason: w.Msg})
	}
	p.SeccompName, p.seccompProfile = "config.json", prof
	p.Seccomp, err = seccomp.Compile(prof)
	if err != nil {
		return Usagef("config.json: linux.seccomp: %v", err)
	}
	return nil
}
