package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/policies"
	"github.com/warden-sandbox/warden/sandbox/cgroup"
	"github.com/warden-sandbox/warden/sandbox/mount"
	"github.com/warden-sandbox/warden/sandbox/netns"
	"github.com/warden-sandbox/warden/seccomp"
	"github.com/warden-sandbox/warden/userns"
)

// systemDirs are shown read-only from the host (or recreated as the same
// symlink, on merged-/usr systems where /bin is a link to usr/bin).
//
// Of /var only lib and cache are shown: the rest holds sockets (spool,
// run-time state of daemons) that a read-only bind does not close to
// connect(2), and little that programs read. --ro /var shows all of it.
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/var/lib", "/var/cache"}

// IsSystemDir reports whether dir is one of the host's system directories
// that the jail core shows read-only whatever the policy (not a policy's
// own list).
func IsSystemDir(dir string) bool {
	for _, d := range systemDirs {
		if d == dir {
			return true
		}
	}
	return false
}

// daemonSocketDirs hold sockets of privileged daemons under the shown
// /var, which a read-only bind does not close to connect(2): members of
// their groups (lxd, incus-admin, microk8s) can have the daemon start a
// privileged container or pod, that is, become root on the host. They are
// hidden wherever the view shows them. (/var/run is a link to /run, which
// is the jail's own.)
var daemonSocketDirs = []string{"/var/snap/lxd/common/lxd", "/var/lib/lxd", "/var/lib/incus", "/var/snap/microk8s/common/run"}

// devNodes are bound from the host into the jail's own /dev.
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

const defaultCloneflags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID |
	syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS | syscall.CLONE_NEWCGROUP

// Resolve turns options and a host description into a Plan. Its one side
// effect is the seccomp cache in Options.SeccompCache (none when empty):
// a compiled filter is stored there. Every problem with the options is an
// error before anything is created.
func Resolve(o Options, h *Host) (*Plan, []Warning, error) {
	if len(o.Argv) == 0 {
		return nil, nil, Usagef("no command given: use warden run [flags] -- CMD [ARGS...]")
	}
	p := &Plan{
		Argv:       o.Argv,
		Hostname:   o.Hostname,
		Cloneflags: defaultCloneflags,
		Scratch:    "/tmp",
		Net:        o.Net,
		Timeout:    o.Timeout,
		KillGrace:  o.KillGrace,
	}
	if p.Hostname == "" {
		p.Hostname = "warden"
	}
	if err := resolveNet(o, p); err != nil {
		return nil, nil, err
	}
	if p.KillGrace == 0 {
		p.KillGrace = 5 * time.Second
	}
	var warns []Warning
	maps, mode, w, err := resolveMaps(o, h)
	if err != nil {
		return nil, nil, err
	}
	p.Maps, p.MapMode, warns = maps, mode, append(warns, w...)
	// slirp4netns makes itself root of the jail's user namespace to create
	// its tap device (setegid(0)/seteuid(0) after setns): that needs a
	// mapped uid 0, which a one-id map of your own uid does not have. Where
	// the map was not asked for explicitly and the caller has a subuid
	// range, it is used, and said at info level.
	if p.NetOpts.Mode == netns.ModeSlirp && !p.Maps.Ranges && p.Maps.InsideUID != 0 && o.Map == "" {
		ao := o
		ao.Map = userns.ModeSubuid
		if maps, mode, _, err := resolveMaps(ao, h); err == nil {
			p.Maps, p.MapMode = maps, mode
			warns = append(warns, Warning{What: "--net slirp4netns: ID map with your subuid range",
				Reason: "slirp4netns needs uid 0 mapped in the jail, which the one-id map has not"})
		}
	}
	if p.NetOpts.Mode == netns.ModeSlirp && !p.Maps.Ranges && p.Maps.InsideUID != 0 {
		return nil, nil, Usagef("--net slirp4netns needs uid 0 mapped in the jail, and the map is your uid only: use --map=auto (your /etc/subuid range) or --as-root, or --net pasta")
	}
	if r := o.RunAs; r != nil {
		if covers(p.Maps.UID, r.UID) && covers(p.Maps.GID, r.GID) {
			p.Maps.InsideUID, p.Maps.InsideGID, p.SetIDs = r.UID, r.GID, true
		} else {
			warns = append(warns, Warning{Loud: true, What: r.Source,
				Reason: fmt.Sprintf("uid %d gid %d are not mapped in the jail (no subordinate ids: /etc/subuid, newuidmap; see `warden check`): the command runs as uid %d inside", r.UID, r.GID, p.Maps.InsideUID)})
		}
	}
	env, err := resolveEnv(o, h)
	if err != nil {
		return nil, nil, err
	}
	p.Env = env
	p.Rlimits = resolveRlimits(o.Rlimits)
	for _, fd := range o.PassFDs {
		if fd < 3 {
			return nil, nil, Usagef("--pass-fd %d: fds 0, 1 and 2 are passed anyway; name fds from 3 on", fd)
		}
	}
	p.PassFDs = o.PassFDs
	if p.Caps, err = resolveCaps(o.CapAdd); err != nil {
		return nil, nil, err
	}
	if o.Root == nil {
		// (A jail with a root of its own shows neither the current
		// directory nor $HOME: nothing to guard, nothing to say.)
		var sw, hw []Warning
		o, sw = guardSharedDirs(o, h)
		warns = append(warns, sw...)
		o, hw = guardHome(o, h)
		warns = append(warns, hw...)
	}
	ops, cwd, err := resolveMounts(o, h)
	if err != nil {
		return nil, nil, err
	}
	if ops, p.Traces, err = applyTraces(ops, o.Traces, h, p.Maps.InsideUID, p.Maps.InsideGID); err != nil {
		return nil, nil, err
	}
	p.Mounts, p.Cwd = ops, cwd
	p.Overlays = planOverlays(ops, o)
	if o.OverlayKeep != "" {
		if err := checkKeep(o.OverlayKeep, len(p.Overlays), h); err != nil {
			return nil, nil, err
		}
	}
	for _, c := range o.Caches {
		p.CacheDirs = append(p.CacheDirs, path.Clean(c.Src))
	}
	if o.Chdir == "" {
		p.CwdFallback = "/"
		if h.Home != "" && o.Root == nil {
			p.CwdFallback = path.Clean(h.Home)
		}
	}
	if p.NetOpts.Mode == netns.ModeHost {
		for i, op := range p.Mounts {
			if op.Kind == mount.Sysfs {
				p.Mounts[i] = mount.Op{Kind: mount.Bind, Source: "/sys", Target: "/sys", ReadOnly: true, Optional: true}
			}
		}
	}
	if p.NetOpts.Mode != netns.ModeNone && p.NetOpts.Mode != netns.ModeHost {
		// The helper's DNS address is known once it runs; Run fills the
		// content in the "go" message, which init writes to the file.
		target := resolvTarget(h)
		if o.Root != nil {
			target = "/etc/resolv.conf"
		}
		p.Mounts = append(p.Mounts, mount.Op{Kind: mount.File, Source: resolvSource, Target: target, File: true})
	}
	if op, ok := hostsFile(p.Mounts, h, p.Hostname); ok && o.Root == nil {
		p.Mounts = append(p.Mounts, op)
	}
	// $HOME read-write: what the command writes there (shell startup
	// files, ~/.config/warden/policies) runs outside the jail later.
	if home := path.Clean(h.Home); h.Home != "" && home != "/" && writableInJail(p.Mounts, h, path.Join(home, ".profile")) {
		warns = append(warns, Warning{Loud: true, What: "$HOME is writable in the jail",
			Reason: "the command can change your shell startup files and warden's own policies (~/.config/warden), which run outside the jail later; run from a project directory, or use --policy strict"})
	}
	if o.SeccompCache != "" && writableInJail(p.Mounts, h, o.SeccompCache) {
		// A payload that can write the cache could plant a weaker filter
		// for later runs (hiding the directory is not enough: a parent it
		// can write can be renamed away). Compile afresh instead.
		o.SeccompCache = ""
	}
	if err := resolveSeccomp(o, p); err != nil {
		return nil, nil, err
	}
	warns = append(warns, p.warnings...)
	p.Limits, p.LimitsMode, p.Policy = o.Limits, o.LimitsMode, o.Policy
	if p.LimitsMode == "" {
		p.LimitsMode = cgroup.Off
	}
	if err := o.Limits.Validate(); err != nil {
		return nil, nil, Usagef("limits: %v", err)
	}
	if p.LimitsMode == cgroup.Off && len(o.Limits.Requested()) > 0 {
		return nil, nil, Usagef("limits %s are set but limits.enforce is \"off\"; use --limits=required or best-effort", strings.Join(o.Limits.Requested(), ", "))
	}
	return p, warns, nil
}

func resolveMaps(o Options, h *Host) (userns.Maps, string, []Warning, error) {
	mode := o.Map
	if mode == "" {
		mode = userns.Mode(policies.DefaultMap)
	}
	if mode == userns.ModeSingle {
		return userns.Compute(h.UID, h.GID, o.AsRoot, nil, nil), "single", nil, nil
	}
	if err := h.LoadSubIDs(); err != nil {
		return userns.Maps{}, "", nil, err
	}
	usable := len(h.SubUID) > 0 && len(h.SubGID) > 0 && h.HaveHelpers
	why := ""
	switch {
	case len(h.SubUID) == 0 || len(h.SubGID) == 0:
		why = fmt.Sprintf("no entry for %s in /etc/subuid and /etc/subgid", h.User)
	case !h.HaveHelpers:
		why = "newuidmap/newgidmap not installed (package uidmap)"
	}
	switch mode {
	case userns.ModeSubuid:
		if !usable {
			return userns.Maps{}, "", nil, Usagef("--map=subuid: %s; add a range (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s) or use --map=auto", why, h.User)
		}
		return userns.Compute(h.UID, h.GID, o.AsRoot, h.SubUID, h.SubGID), "subuid", nil, nil
	}
	if !usable {
		// Not a weakened protection (a one-id map is the tighter one), so
		// it is reported at info level only.
		return userns.Compute(h.UID, h.GID, o.AsRoot, nil, nil), "single", []Warning{{What: "map=auto: one-id map", Reason: why}}, nil
	}
	return userns.Compute(h.UID, h.GID, o.AsRoot, h.SubUID, h.SubGID), "subuid", nil, nil
}

// envAllow is the environment that reaches the payload unless asked
// otherwise: enough for a shell and locale, nothing that carries a secret.
var envAllow = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LC_*", "TZ", "COLORTERM", "NO_COLOR"}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func resolveEnv(o Options, h *Host) ([]string, error) {
	allow := append(append([]string{}, envAllow...), o.EnvPass...)
	for _, pat := range allow {
		if _, err := path.Match(pat, ""); err != nil {
			return nil, Usagef("--env-pass %q: bad pattern: %v", pat, err)
		}
	}
	vals := map[string]string{}
	for _, kv := range h.Environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		for _, pat := range allow {
			if m, _ := path.Match(pat, k); m {
				vals[k] = v
				break
			}
		}
	}
	if _, ok := vals["PATH"]; !ok {
		vals["PATH"] = defaultPath
	}
	vals["HOME"] = h.Home
	if o.Root != nil {
		// The host's home is not in a jail with its own root.
		vals["HOME"] = "/"
		if o.AsRoot {
			vals["HOME"] = "/root"
		}
	}
	for _, kv := range o.RootEnv {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			vals[k] = v
		}
	}
	for _, kv := range o.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, Usagef("--env %q: want KEY=VALUE", kv)
		}
		vals[k] = v
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	env := make([]string, 0, len(keys))
	for _, k := range keys {
		env = append(env, k+"="+vals[k])
	}
	return env, nil
}

// resolveMounts builds the default view and lays the user's paths over it.
// It returns the ops and the working directory inside the jail.
// DefaultTmpfsSize caps each tmpfs of a jail unless a policy or
// --tmpfs-size says otherwise: without it a tmpfs may take half of RAM, and
// where no memory limit applies, files are memory no OOM kill attributes to
// the command.
const DefaultTmpfsSize = 1 << 30

// tmpfsSize is the cap of each of the jail's tmpfs mounts, as a tmpfs
// size= option.
func tmpfsSize(o Options) string {
	size := o.TmpfsSize
	if size <= 0 {
		size = DefaultTmpfsSize
	}
	if m := o.Limits.Memory; m > 0 && size > m {
		size = m
	}
	return sizeOption(size)
}

// sizeOption renders a byte count as tmpfs's size= option.
func sizeOption(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("size=%dg", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("size=%dm", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("size=%dk", n>>10)
	}
	return fmt.Sprintf("size=%d", n)
}

func resolveMounts(o Options, h *Host) ([]mount.Op, string, error) {
	size := tmpfsSize(o)
	if o.Root != nil {
		return resolveUserMounts(rootUserPaths(o), h, rootMounts(o, h, size), size)
	}
	var ops []mount.Op
	for _, d := range systemDirs {
		fi, err := h.Lstat(d)
		if err != nil {
			continue // absent on this distro
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			link, err := h.Readlink(d)
			if err != nil {
				return nil, "", fmt.Errorf("read link %s: %w", d, err)
			}
			ops = append(ops, mount.Op{Kind: mount.Symlink, Source: link, Target: d})
			continue
		}
		if fi.IsDir() {
			ops = append(ops, mount.Op{Kind: mount.Bind, Source: d, Target: d, ReadOnly: true})
		}
	}
	ops = append(ops, ownMounts(h, size)...)
	ops = append(ops,
		mount.Op{Kind: mount.Tmpfs, Target: "/var/tmp", Data: "mode=1777," + size},
		mount.Op{Kind: mount.Tmpfs, Target: "/run", Data: "mode=0755," + size},
	)
	home := path.Clean(h.Home)
	if home != "/" && home != "" && h.Home != "" {
		ops = append(ops, mount.Op{Kind: mount.Tmpfs, Target: home, Data: "mode=0700," + size})
	}
	return resolveUserMounts(o, h, ops, size)
}

// resolveUserMounts lays the user's paths over the base view ops.
func resolveUserMounts(o Options, h *Host, ops []mount.Op, size string) ([]mount.Op, string, error) {
	// User paths (--ro/--rw/--tmpfs/--hide and the policy's), applied
	// parents first so a later, deeper path is not hidden by an earlier one.
	var user []mount.Op
	cwd := path.Clean(h.Cwd)
	for _, m := range o.RO {
		if skipCwdBind(m, cwd) {
			continue
		}
		op, err := bindOp(h, "--ro", m, true)
		if err != nil {
			return nil, "", err
		}
		user = append(user, op)
	}
	for _, m := range o.RW {
		if skipCwdBind(m, cwd) {
			continue
		}
		op, err := bindOp(h, "--rw", m, false)
		if err != nil {
			return nil, "", err
		}
		user = append(user, op)
	}
	for _, m := range o.Caches {
		// warden's own directory, made by Run (CacheDirs) if it is not
		// there yet: nothing to look up on the host now.
		if !path.IsAbs(m.Src) || !path.IsAbs(m.Dst) {
			return nil, "", Usagef("%s: the cache directory and the target must be absolute paths", m.Origin)
		}
		user = append(user, mount.Op{Kind: mount.Bind, Source: path.Clean(m.Src), Target: path.Clean(m.Dst)})
	}
	for _, m := range o.Mounts {
		switch m.Type {
		case "tmpfs":
			data := "mode=0755," + size
			if m.Size > 0 {
				capped := m.Size
				if lim := o.Limits.Memory; lim > 0 && capped > lim {
					capped = lim
				}
				data = "mode=0755," + sizeOption(capped)
			}
			user = append(user, mount.Op{Kind: mount.Tmpfs, Target: path.Clean(m.Target), Data: data, ReadOnly: m.ReadOnly})
		default:
			op, err := bindOp(h, "mount", PathMap{Src: m.Source, Dst: m.Target, Origin: m.Origin}, m.ReadOnly)
			if err != nil {
				if m.Optional {
					continue
				}
				return nil, "", err
			}
			user = append(user, op)
		}
	}
	for _, t := range o.Tmpfs {
		if !path.IsAbs(t) {
			return nil, "", Usagef("--tmpfs %s: the target must be an absolute path", t)
		}
		user = append(user, mount.Op{Kind: mount.Tmpfs, Target: path.Clean(t), Data: "mode=0755," + size})
	}
	for _, p := range o.Hide {
		if !path.IsAbs(p) {
			return nil, "", Usagef("--hide %s: the path must be absolute", p)
		}
		if op, ok := hideOp(h, path.Clean(p)); ok {
			user = append(user, op)
		}
	}
	// warden's own policies must not be changed from a jail that shows
	// $HOME (a planted ~/.config/warden/policies/default.toml would loosen
	// every later run); they are hidden where a bind shows them.
	if h.Home != "" {
		if op, ok := hideOp(h, path.Join(h.Home, ".config", "warden")); ok {
			user = append(user, op)
		}
	}
	for _, d := range daemonSocketDirs {
		if op, ok := hideOp(h, d); ok {
			user = append(user, op)
		}
	}
	// The cache mounts' directories are seen at their targets only: one
	// jail's cache is no other policy's business.
	if o.CachesRoot != "" {
		if op, ok := hideOp(h, o.CachesRoot); ok {
			user = append(user, op)
		}
	}
	// The compiled-filter cache must not be writable from a jail: a payload
	// could plant a weaker filter for the next run.
	if o.SeccompCache != "" {
		if op, ok := hideOp(h, o.SeccompCache); ok {
			user = append(user, op)
		}
	}
	// Overlays come after the binds: one of the same target replaces the
	// bind (--overlay . in a policy that binds the project read-write).
	ovs, err := overlayOps(o, size)
	if err != nil {
		return nil, "", err
	}
	user = append(user, ovs...)
	for _, u := range user {
		if u.Target == "/" || u.Target == "/proc" || strings.HasPrefix(u.Target, "/proc/") {
			return nil, "", Usagef("mount target %s: cannot replace the jail's root or /proc", u.Target)
		}
	}
	ops = pruneHides(overlay(ops, user))
	wd := cwd
	if o.Root != nil {
		wd = "/" // the host's directories are not there
	}
	if o.Chdir != "" {
		if !path.IsAbs(o.Chdir) {
			return nil, "", Usagef("--chdir %s: must be an absolute path inside the jail", o.Chdir)
		}
		wd = path.Clean(o.Chdir)
	}
	return ops, wd, nil
}

// ownMounts are the file systems every jail has of its own, whatever its
// root: /proc (its knobs read-only), /sys, a minimal /dev and /tmp.
func ownMounts(h *Host, size string) []mount.Op {
	ops := []mount.Op{
		{Kind: mount.Proc, Target: "/proc"},
		// The kernel's knobs stay read-only even for the jail's root.
		{Kind: mount.Remount, Target: "/proc/sys", Optional: true},
		{Kind: mount.Remount, Target: "/proc/sysrq-trigger", Optional: true},
		{Kind: mount.Remount, Target: "/proc/irq", Optional: true},
		{Kind: mount.Remount, Target: "/proc/bus", Optional: true},
		{Kind: mount.Sysfs, Target: "/sys", ReadOnly: true, Optional: true},
		{Kind: mount.Tmpfs, Target: "/dev", Data: "mode=0755," + size},
	}
	for _, n := range devNodes {
		ops = append(ops, mount.Op{Kind: mount.DevBind, Source: "/dev/" + n, Target: "/dev/" + n, File: true})
	}
	if h.Terminal != "" {
		// The caller's terminal is the host's devpts node, which the
		// jail's own devpts does not have: shown as /dev/console (as
		// bubblewrap does), ttyname(3) and tty(1) find it. It gives the
		// jail nothing its fds 0-2 do not already give.
		ops = append(ops, mount.Op{Kind: mount.DevBind, Source: h.Terminal, Target: "/dev/console", File: true, Optional: true})
	}
	return append(ops,
		mount.Op{Kind: mount.Devpts, Target: "/dev/pts", Data: "mode=0620,ptmxmode=0666"},
		mount.Op{Kind: mount.Symlink, Source: "pts/ptmx", Target: "/dev/ptmx"},
		mount.Op{Kind: mount.Tmpfs, Target: "/dev/shm", Data: "mode=1777," + size},
		mount.Op{Kind: mount.Mqueue, Target: "/dev/mqueue", Optional: true},
		mount.Op{Kind: mount.Symlink, Source: "/proc/self/fd", Target: "/dev/fd"},
		mount.Op{Kind: mount.Symlink, Source: "/proc/self/fd/0", Target: "/dev/stdin"},
		mount.Op{Kind: mount.Symlink, Source: "/proc/self/fd/1", Target: "/dev/stdout"},
		mount.Op{Kind: mount.Symlink, Source: "/proc/self/fd/2", Target: "/dev/stderr"},
		mount.Op{Kind: mount.Tmpfs, Target: "/tmp", Data: "mode=1777," + size},
	)
}

// overlay appends user ops after base, dropping base ops whose target a user
// op replaces exactly, and orders user ops by depth (stable).
func overlay(base, user []mount.Op) []mount.Op {
	replaced := map[string]bool{}
	for _, u := range user {
		replaced[u.Target] = true
	}
	var out []mount.Op
	for _, b := range base {
		if !replaced[b.Target] {
			out = append(out, b)
		}
	}
	sort.SliceStable(user, func(i, j int) bool { return depth(user[i].Target) < depth(user[j].Target) })
	// Later duplicates of the same target win (flags override defaults).
	seen := map[string]int{}
	var uniq []mount.Op
	for _, u := range user {
		if i, ok := seen[u.Target]; ok {
			uniq[i] = u
			continue
		}
		seen[u.Target] = len(uniq)
		uniq = append(uniq, u)
	}
	return append(out, uniq...)
}

// pruneHides drops hides of paths that no bind shows: under the jail's own
// tmpfs (an empty $HOME) there is nothing to hide, and hiding a directory
// that a deeper bind needs as its mount point would break that bind.
func pruneHides(ops []mount.Op) []mount.Op {
	out := ops[:0:0]
	for i, o := range ops {
		if o.Kind != mount.Hide {
			out = append(out, o)
			continue
		}
		shown := false
		for _, b := range ops[:i] {
			if (b.Kind == mount.Bind || b.Kind == mount.Overlay && b.Target != "/") && (o.Target == b.Target || strings.HasPrefix(o.Target, b.Target+"/")) {
				shown = true
			}
		}
		if shown {
			out = append(out, o)
		}
	}
	return out
}

// skipCwdBind drops a bind of the current directory when that is / or a
// system directory: the view already shows those read-only, and a
// read-write / would replace the jail's root.
func skipCwdBind(m PathMap, cwd string) bool {
	return m.Src == cwd && m.Dst == cwd && (cwd == "/" || isSystemPath(cwd))
}

func depth(p string) int { return strings.Count(path.Clean(p), "/") }

func isSystemPath(p string) bool {
	for _, d := range []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/proc", "/sys", "/dev"} {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

func bindOp(h *Host, flag string, m PathMap, ro bool) (mount.Op, error) {
	if m.Origin != "" {
		flag = m.Origin
	}
	if !path.IsAbs(m.Dst) {
		return mount.Op{}, Usagef("%s %s:%s: the target must be an absolute path", flag, m.Src, m.Dst)
	}
	src, err := h.EvalSymlinks(m.Src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return mount.Op{}, Usagef("%s %s: no such file or directory on the host", flag, m.Src)
		}
		return mount.Op{}, Usagef("%s %s: %v", flag, m.Src, err)
	}
	fi, err := h.Stat(src)
	if err != nil {
		return mount.Op{}, Usagef("%s %s: %v", flag, m.Src, err)
	}
	return mount.Op{Kind: mount.Bind, Source: src, Target: path.Clean(m.Dst), ReadOnly: ro, File: !fi.IsDir()}, nil
}

// ParsePathMap parses SRC[:DST] (DST defaults to SRC); SRC may be relative
// to cwd.
func ParsePathMap(s, cwd string) PathMap {
	src, dst, ok := strings.Cut(s, ":")
	if !filepath.IsAbs(src) {
		src = filepath.Join(cwd, src)
	}
	if !ok || dst == "" {
		dst = src
	}
	return PathMap{Src: filepath.Clean(src), Dst: dst}
}

// hideOp hides p if it exists on the host; a path that does not exist has
// nothing to hide. Hides are optional at apply time: the path may not be
// visible in the jail at all.
func hideOp(h *Host, p string) (mount.Op, bool) {
	fi, err := h.Stat(p)
	if err != nil {
		return mount.Op{}, false
	}
	return mount.Op{Kind: mount.Hide, Target: p, File: !fi.IsDir(), Optional: true}, true
}

// CheckSeccomp resolves the options' seccomp profile without compiling it,
// for `warden policy check`; errors are placed like Resolve's.
func CheckSeccomp(o Options) error {
	name := o.Seccomp
	if name == "" {
		name = "default"
	}
	if _, err := seccomp.Resolve(name, o.SeccompOpts); err != nil {
		return seccompError(o, name, err)
	}
	return nil
}

// seccompError places a seccomp error at the policy key it is about: the
// allow or deny element that names the syscall in the message, else the
// profile; with the key's file:line:col when the policy set it.
func seccompError(o Options, profile string, err error) error {
	msg := err.Error()
	key := "seccomp.profile"
	for _, l := range []struct {
		key   string
		names []string
	}{{"seccomp.allow", o.SeccompOpts.Allow}, {"seccomp.deny", o.SeccompOpts.Deny}} {
		for i, n := range l.names {
			if strings.Contains(msg, fmt.Sprintf("%q", strings.TrimPrefix(n, "?"))) {
				key = fmt.Sprintf("%s[%d]", l.key, i)
			}
		}
	}
	if at, ok := o.Origins[key]; ok {
		if strings.HasPrefix(at, "--") {
			return Usagef("%s: %v", at, err)
		}
		return Usagef("policy %s: %s: %v", at, key, err)
	}
	if o.Policy.Source != "" && key != "seccomp.profile" {
		return Usagef("policy %s: %s: %v", o.Policy.Source, key, err)
	}
	return Usagef("seccomp profile %s: %v", profile, err)
}

func resolveSeccomp(o Options, p *Plan) error {
	name := o.Seccomp
	if name == "" {
		name = "default"
	}
	// A built-in profile's program comes from the request cache when it is
	// there; it is checked against the profile concurrently, and Run lets
	// the jail go only once the check has passed (checkSeccomp).
	builtin := !strings.ContainsRune(name, '/') && !strings.HasSuffix(name, ".json") && name != "none"
	useRequest := o.SeccompCache != "" && builtin && !o.SeccompOpts.Audit
	var reqKey string
	if useRequest {
		reqKey = seccomp.RequestKey(name, o.SeccompOpts, binaryID())
		if prog, profKey, err := seccomp.ReadRequest(o.SeccompCache, reqKey); err == nil {
			p.SeccompName, p.Seccomp = name, prog
			check := make(chan error, 1)
			go func() {
				prof, err := seccomp.Resolve(name, o.SeccompOpts)
				if err == nil {
					err = seccomp.Check(prof, profKey, prog)
				}
				if err != nil {
					seccomp.RemoveRequest(o.SeccompCache, reqKey)
					err = fmt.Errorf("the cached seccomp filter of profile %s (%s) does not match the profile: %w; the entry was removed, run again", name, o.SeccompCache, err)
				}
				check <- err
			}()
			p.seccompCheck = check
			return nil
		}
	}
	prof, err := seccomp.Resolve(name, o.SeccompOpts)
	if err != nil {
		return seccompError(o, name, err)
	}
	p.SeccompName = name
	if prof == nil {
		return nil
	}
	for _, w := range prof.Warnings {
		p.warnings = append(p.warnings, Warning{What: "seccomp", Reason: w.Msg})
	}
	p.SeccompAudit = prof.Audit
	p.seccompProfile = prof
	if o.SeccompCache != "" {
		p.Seccomp, err = seccomp.CompileCached(prof, o.SeccompCache)
	} else {
		p.Seccomp, err = seccomp.Compile(prof)
	}
	if err != nil {
		return fmt.Errorf("compile seccomp profile %s: %w", name, err)
	}
	// A request whose profile has warnings is not cached: they must be
	// said on every run.
	if useRequest && len(prof.Warnings) == 0 {
		seccomp.WriteRequest(o.SeccompCache, reqKey, seccomp.Key(prof), p.Seccomp)
	}
	return nil
}

// binaryID identifies the running warden binary for the request cache:
// its version and the executable's device, inode, size and modification
// time (a rebuilt or upgraded binary has other built-in profiles and
// another libseccomp).
func binaryID() string {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return Version
	}
	return fmt.Sprintf("%s %d:%d %d %d.%d", Version, st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
}

// checkSeccomp waits for the check of a filter from the request cache, if
// there is one.
func (p *Plan) checkSeccomp() error {
	if p.seccompCheck == nil {
		return nil
	}
	return <-p.seccompCheck
}

// guardHome shows $HOME, or a directory that holds it, read-only where a
// policy (not a --rw flag) makes it writable, as the default policy's
// ${CWD} does when warden starts in $HOME: a command that can write there
// can change the shell's startup files and warden's own policies, which run
// outside the jail later. The credential files stay hidden either way.
// --rw naming the directory keeps it writable (and Resolve warns).
func guardHome(o Options, h *Host) (Options, []Warning) {
	home := path.Clean(h.Home)
	if h.Home == "" || home == "/" {
		return o, nil
	}
	if real, err := h.EvalSymlinks(home); err == nil {
		home = real
	}
	asked := map[string]bool{} // named by --rw
	for _, m := range o.RW {
		if strings.HasPrefix(m.Origin, "--") {
			asked[path.Clean(m.Src)] = true
		}
	}
	var warns []Warning
	var rw []PathMap
	for _, m := range o.RW {
		src := path.Clean(m.Src)
		if strings.HasPrefix(m.Origin, "--") || asked[src] || !(src == home || src == "/" || strings.HasPrefix(home, src+"/")) {
			rw = append(rw, m)
			continue
		}
		o.RO = append(append([]PathMap{}, o.RO...), m)
		warns = append(warns, Warning{Loud: true, What: src + " is shown read-only",
			Reason: "it is $HOME or holds it, and a command that writes there can change your shell startup files and warden's own policies, which run outside the jail later; run from a project directory, or add --rw " + src + " to let the command write it"})
	}
	o.RW = rw
	return o, warns
}

// writableInJail reports whether a read-write bind of the plan shows the
// host path dir, or one of its parents, to the jail.
func writableInJail(ops []mount.Op, h *Host, dir string) bool {
	real, err := h.EvalSymlinks(dir)
	if err != nil {
		real = path.Clean(dir) // not there yet: it would be created here
	}
	for _, o := range ops {
		if (o.Kind == mount.Bind || o.Kind == mount.Trace) && !o.ReadOnly && (real == o.Source || strings.HasPrefix(real, o.Source+"/") || o.Source == "/") {
			return true
		}
	}
	return false
}

// resolvSource marks the resolv.conf op whose content comes from the
// network helper.
const resolvSource = "network helper DNS"

func resolveNet(o Options, p *Plan) error {
	mode, err := netns.ParseMode(o.Net)
	if err != nil {
		return Usagef("--net %s: %v", o.Net, err)
	}
	p.Net = string(mode)
	p.NetOpts = netns.Options{Mode: mode, AllowHostLoopback: o.AllowHostLoopback}
	for _, s := range o.Publish {
		port, err := netns.ParsePort(s)
		if err != nil {
			return Usagef("--publish %s: %v", s, err)
		}
		p.NetOpts.Publish = append(p.NetOpts.Publish, port)
	}
	if err := p.NetOpts.Validate(); err != nil {
		return Usagef("network: %v", err)
	}
	if mode == netns.ModeHost {
		// The host's network namespace: no CLONE_NEWNET. The report marks
		// the network protection off and says why this is unsafe. A fresh
		// sysfs needs a network namespace of our own (sysfs(5)), so /sys
		// is the host's, read-only.
		p.Cloneflags &^= syscall.CLONE_NEWNET
	}
	return nil
}

// resolvTarget is where the jail's resolv.conf goes: /etc/resolv.conf, or,
// when that is a symlink into /run (systemd-resolved), the link's target in
// the jail's own /run.
func resolvTarget(h *Host) string {
	const etc = "/etc/resolv.conf"
	fi, err := h.Lstat(etc)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return etc
	}
	link, err := h.Readlink(etc)
	if err != nil {
		return etc
	}
	if !path.IsAbs(link) {
		link = path.Join("/etc", link)
	}
	if strings.HasPrefix(link, "/run/") {
		return link
	}
	if real, err := h.EvalSymlinks(etc); err == nil {
		return real
	}
	return etc
}

// maxHosts bounds the /etc/hosts copy: it travels in the plan and lives
// on a 64 KiB tmpfs in the jail (mount.File).
const maxHosts = 60 << 10

// hostsFile returns a mount of the host's /etc/hosts plus a line that
// names the jail's host name, when the plan shows the host's /etc and
// nothing of its own at /etc/hosts. Programs look their own host name up
// (Java's InetAddress.getLocalHost, Python's getfqdn, sudo, hostname -f)
// and fail where it does not resolve; container runtimes add the same
// line. ok is false when there is nothing to add.
func hostsFile(ops []mount.Op, h *Host, hostname string) (mount.Op, bool) {
	const target = "/etc/hosts"
	if h.ReadFile == nil {
		return mount.Op{}, false
	}
	etc := false
	for _, o := range ops {
		switch {
		case o.Kind == mount.Bind && o.Source == "/etc" && o.Target == "/etc":
			etc = true
		case o.Target == target || o.Target == "/etc":
			etc = false // the policy put something of its own there
		}
	}
	if !etc {
		return mount.Op{}, false
	}
	if fi, err := h.Lstat(target); err != nil || !fi.Mode().IsRegular() {
		return mount.Op{}, false
	}
	b, err := h.ReadFile(target)
	if err != nil || len(b) > maxHosts {
		return mount.Op{}, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		for _, name := range f[min(1, len(f)):] {
			if name == hostname {
				return mount.Op{}, false // it resolves already
			}
		}
	}
	data := string(b)
	if data != "" && !strings.HasSuffix(data, "\n") {
		data += "\n"
	}
	data += "# added by warden: the jail's host name\n127.0.1.1\t" + hostname + "\n"
	return mount.Op{Kind: mount.File, Source: "host /etc/hosts + " + hostname, Target: target, File: true, Data: data}, true
}

// guardSharedDirs keeps directories that hold other programs' sockets out
// of the jail. A path socket is reached through the file system, whatever
// the network namespace, and read-only binds do not stop connect(2): a
// jail shown the host's /tmp can drive the user's tmux server (tmux -S
// /tmp/tmux-UID/default new-window CMD runs CMD outside the jail), X11 or
// an ssh-agent; one shown $XDG_RUNTIME_DIR can ask systemd --user to run
// anything. When the policy binds the current directory (${CWD},
// ${PROJECT}) and that is such a directory, the bind is dropped (the jail
// runs in its private /tmp, or falls back to $HOME) and a loud warning
// says so; a bind asked for by flag is kept, with the same warning.
func guardSharedDirs(o Options, h *Host) (Options, []Warning) {
	var warns []Warning
	cwd := path.Clean(h.Cwd)
	filter := func(ms []PathMap) []PathMap {
		var out []PathMap
		for _, m := range ms {
			why := sharedDir(h, m.Src)
			switch {
			case why == "":
				out = append(out, m)
			case path.Clean(m.Src) == cwd && !strings.HasPrefix(m.Origin, "--"):
				warns = append(warns, Warning{Loud: true, What: "the current directory " + cwd + " is not shown in the jail",
					Reason: why + "; the command runs in the jail's own empty directory instead. Run from a directory of your own, or show what it needs with --ro/--rw"})
			default:
				out = append(out, m)
				warns = append(warns, Warning{Loud: true, What: m.Src + " is shown in the jail",
					Reason: why + "; show a subdirectory instead"})
			}
		}
		return out
	}
	o.RO, o.RW = filter(o.RO), filter(o.RW)
	return o, warns
}

// sharedDir says why dir must not be shown in a jail, or "".
func sharedDir(h *Host, dir string) string {
	real, err := h.EvalSymlinks(dir)
	if err != nil {
		return ""
	}
	real = path.Clean(real)
	if real == "/" {
		return "" // never bound: the jail's view has its own root
	}
	run := ""
	for _, kv := range h.Environ {
		if v, ok := strings.CutPrefix(kv, "XDG_RUNTIME_DIR="); ok && path.IsAbs(v) {
			run = path.Clean(v)
		}
	}
	for _, r := range []string{run, fmt.Sprintf("/run/user/%d", h.UID)} {
		if r != "" && (real == r || strings.HasPrefix(r, real+"/")) {
			return real + " holds your session's sockets (" + r + ": D-Bus, systemd --user, agents), through which the command could act outside the jail"
		}
	}
	if fi, err := h.Stat(real); err == nil && fi.IsDir() && fi.Mode()&fs.ModeSticky != 0 && fi.Mode().Perm()&0o002 != 0 {
		return real + " is shared by every program (sticky and world-writable) and holds their sockets (tmux, X11, ssh-agent), through which the command could act outside the jail"
	}
	return ""
}
