package sandbox

import (
	"time"

	"github.com/warden-sandbox/warden/sandbox/cgroup"
	"github.com/warden-sandbox/warden/sandbox/netns"
	"github.com/warden-sandbox/warden/seccomp"

	"github.com/warden-sandbox/warden/sandbox/mount"
	"github.com/warden-sandbox/warden/userns"
)

// Version is warden's version, set at build time with -ldflags -X.
var Version = "dev"

// PathMap is a host path shown at a jail path.
type PathMap struct {
	Src, Dst string
	// Origin names where the entry came from for error messages: a flag
	// ("--ro") or a policy position ("policy ci.toml:12:3: filesystem.ro[0]").
	Origin string
}

// Options are what the user asked for, from flags (and, through Resolve's
// caller, from a policy). Zero values mean "the default".
type Options struct {
	Argv     []string
	RO, RW   []PathMap
	Tmpfs    []string
	Hide     []string
	Chdir    string
	Hostname string
	AsRoot   bool
	Map      userns.Mode // "" = auto
	Net      string      // "" = none
	// Publish are published ports "[HOSTIP:]HOSTPORT:JAILPORT[/proto]";
	// AllowHostLoopback lets the jail reach the host's loopback.
	Publish           []string
	AllowHostLoopback bool
	Env               []string // K=V
	EnvPass           []string // names or glob patterns
	Timeout           time.Duration
	// Rlimits for the payload (core dumps are off unless given).
	Rlimits []Rlimit
	// PassFDs are caller fds passed to the payload, renumbered from 3.
	PassFDs []int
	// CapAdd names capabilities the payload keeps (default: none).
	CapAdd []string
	// KillGrace is the time between SIGTERM and SIGKILL on timeout.
	KillGrace time.Duration
	// CacheSpecs are the policy's cache mounts, "NAME:DST"; the caller turns
	// them into Caches (it owns the directories).
	CacheSpecs []string
	// Caches are cache mounts: a directory warden keeps (Src) shown
	// read-write at Dst. CachesRoot holds every one of them, and is hidden
	// wherever a bind would show it.
	Caches     []PathMap
	CachesRoot string
	// TmpfsSize caps each tmpfs of the jail, in bytes (0: DefaultTmpfsSize);
	// never more than Limits.Memory.
	TmpfsSize int64
	// Mounts are [[filesystem.mount]] entries of a policy.
	Mounts []MountSpec
	// Overlays are host directories shown through overlayfs (Src at Dst):
	// the jail writes to a tmpfs upper layer, the directory never changes.
	Overlays []PathMap
	// Traces are directories of the jail's view (absolute paths inside it)
	// shown through warden's tracing FUSE file system instead of a plain
	// bind, read-only or read-write as they would otherwise be; the report
	// says what the command did in each (--trace).
	Traces []string
	// Root, when set, is the jail's root instead of the host's view
	// (--rootfs, --image): a policy's host paths are not shown, only those
	// named with --ro/--rw.
	Root *RootFS
	// RootEnv are an image's environment variables (K=V), under Env.
	RootEnv []string
	// RunAs, when set, is who the command runs as inside (needs the
	// subordinate ids mapped; Resolve warns and runs as the mapped caller
	// when they are not).
	RunAs *RunAs
	// OverlayKeep saves the upper layer of the run's one overlay there.
	OverlayKeep string
	// Limits are cgroup limits, applied as LimitsMode says.
	Limits     cgroup.Limits
	LimitsMode cgroup.Mode
	// Seccomp is a profile name or JSON path ("" = default), tuned by
	// SeccompOpts.
	Seccomp     string
	SeccompOpts seccomp.Options
	// Policy names the policy these options came from, for the report.
	Policy PolicyRef
	// Origins maps policy keys ("seccomp.allow[2]") to where they were
	// set ("ci.toml:12:3" or a flag), so that errors found late name the
	// place to fix.
	Origins map[string]string
	// Report is where the run report goes ("" = nowhere).
	Report string
	// SeccompCache is the directory of compiled filters ("" = no cache).
	SeccompCache string
}

// NSJoin is a namespace joined by path.
type NSJoin struct {
	Path string
	Flag uintptr // CLONE_NEWNET, ...
	Type string  // "network", ...
}

// Plan decides everything about one run. It is compiled into the jail's
// programs (Programs), which the jail's init runs: init reads nothing else.
type Plan struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Cwd  string   `json:"cwd"`
	// CwdFallback is where the jail's init goes when Cwd (the caller's current
	// directory, not asked for explicitly) is not visible in the jail.
	CwdFallback string      `json:"cwd_fallback,omitempty"`
	Hostname    string      `json:"hostname"`
	Maps        userns.Maps `json:"maps"`
	// MapMode is the identity mode in effect after auto resolution
	// ("single" or "subuid").
	MapMode    string     `json:"map_mode"`
	Cloneflags uintptr    `json:"cloneflags"`
	Mounts     []mount.Op `json:"mounts"`
	// Overlays describe the overlay ops, in their order (the parent reads
	// each one's upper layer after the run).
	Overlays []OverlayPlan `json:"-"`
	// Traces describe the trace ops, in their order (warden serves each
	// one's FUSE mount and reports what the command did there).
	Traces []TracePlan `json:"-"`
	// CacheDirs are the cache mounts' directories, which Run makes (0700)
	// when they are not there yet.
	CacheDirs []string `json:"cache_dirs,omitempty"`
	// Scratch is where the jail's init attaches the new root before pivot_root.
	Scratch string `json:"scratch"`
	Net     string `json:"net"`
	// NetOpts are the network helper's options (parent side only).
	NetOpts netns.Options `json:"-"`
	// Foreground gives the payload the controlling terminal's foreground
	// (set by Run when warden itself is in the foreground of a terminal).
	Foreground bool `json:"foreground"`
	// Caps are the capability numbers the payload keeps (within the
	// jail's user namespace); empty by default.
	Caps      []int         `json:"caps,omitempty"`
	Timeout   time.Duration `json:"timeout"`
	KillGrace time.Duration `json:"kill_grace"`
	LogLevel  string        `json:"log_level"`
	// TraceEpoch is when the parent process started (Unix ns), set with
	// --log-level debug: both stages log their phases on its clock.
	TraceEpoch int64    `json:"trace_epoch,omitempty"`
	Rlimits    []Rlimit `json:"rlimits,omitempty"`
	// Seccomp is the compiled filter (struct sock_filter array), nil for
	// none; SeccompName says which profile it is.
	Seccomp      []byte `json:"seccomp,omitempty"`
	SeccompName  string `json:"seccomp_name"`
	SeccompAudit bool   `json:"seccomp_audit,omitempty"`
	// Limits and LimitsMode are applied by the parent (host side).
	Limits     cgroup.Limits `json:"-"`
	LimitsMode cgroup.Mode   `json:"-"`
	// Policy is carried for the report only.
	Policy PolicyRef `json:"-"`
	// Started, when set, is called once the payload runs (warden run -d
	// records the jail's state there).
	Started func(StartInfo) `json:"-"`
	// JoinNS are namespaces init joins by path (an OCI engine's network
	// namespace) before anything else; SetIDs makes the payload set its
	// uid and gid to Maps.InsideUID/GID (an OCI process.user the map alone
	// does not give).
	JoinNS []NSJoin `json:"-"`
	SetIDs bool     `json:"-"`
	// Console, with Gate, is the engine's console socket: the container
	// gets a terminal of its own, whose master Create sends there.
	Console string `json:"-"`
	// Gate, when set, is the state directory of an OCI container: init
	// builds the jail, says "ready" and waits there, at GateFifo, for
	// `warden oci start`; it outlives warden and exits with the
	// payload's status (Create).
	Gate string `json:"-"`
	// Hooks are an OCI config's hooks that run inside the container
	// (createContainer, startContainer); nil for none.
	Hooks *ContainerHooks `json:"-"`
	// ExecSocket, when set, is where the jail's namespaces are served to
	// `warden exec` while it runs (see nsServer).
	ExecSocket string `json:"-"`
	// seccompProfile is the resolved profile, kept on the host side for
	// the audit supervisor (it answers with the profile's errno).
	seccompProfile *seccomp.Profile
	// seccompCheck reports the check of a filter taken from the request
	// cache (nil when it was compiled or checked in Resolve).
	seccompCheck chan error
	// warnings collected while resolving (returned by Resolve).
	warnings []Warning
	// PassFDs are the caller's fd numbers; the jail's init moves them to
	// fd 3 on, where the payload gets them.
	PassFDs []int `json:"pass_fds,omitempty"`
}
