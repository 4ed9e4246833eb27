package policies

import (
	"embed"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Env is everything a policy may reference. The caller fills it from the real
// host; tests use fakes.
type Env struct {
	CWD, Home, User, TmpDir string
	// Project is the git top level of CWD, else CWD (the caller computes it).
	Project  string
	UID, GID int
	// Getenv serves ${env:NAME}. It is called only when a policy uses it; nil
	// makes every ${env:NAME} an error.
	Getenv func(string) (string, bool)
	// ConfigDirs is the search path for policy names, in order, usually
	// $XDG_CONFIG_HOME/warden/policies and /etc/warden/policies. Relative
	// entries are ignored: a name never resolves to the current directory.
	ConfigDirs []string
	// ReadFile reads a policy file named by a path or found on ConfigDirs;
	// nil reads the host file system (regular files of at most 1 MiB).
	// Tests pass an in-memory one.
	ReadFile func(path string) ([]byte, error)
}

func (e Env) readFile(path string) ([]byte, error) {
	if e.ReadFile != nil {
		return e.ReadFile(path)
	}
	return readPolicy(path)
}

// Policy is a fully resolved policy: extends merged, variables expanded,
// validated. Sandbox code reads it; it never needs the files again.
type Policy struct {
	// Name is the built-in name or the file's base name without ".toml".
	Name string
	// Source is the file path, or "builtin:NAME".
	Source string
	// Hash is the sha256 (hex) of the canonical form of every setting below
	// Description: two policies with the same Hash build the same jail.
	Hash        string
	Description string
	// Chain is the extends chain as Sources, leaf first.
	Chain []string
	// Origin maps each key that some layer set ("limits.memory", and
	// "filesystem.ro[2]" for list elements, "process.env.TZ" for map entries)
	// to where it was set: "FILE:LINE:COL" or the flag ("--memory").
	// Keys left at their default are absent.
	Origin map[string]string

	Identity   Identity
	Filesystem Filesystem
	Network    Network
	Process    Process
	Limits     Limits
	Seccomp    Seccomp
	Report     Report

	// merged is the layer stack flattened, kept so that Apply can lay flags
	// over it under the same merge rule as extends.
	merged *layer
}

// Identity says who the payload is.
type Identity struct {
	User string // "self" (default) or "root"
	Map  string // "auto" (default), "single" or "subuid"
}

// Filesystem describes the jail's view of the file system. All paths are
// absolute and clean.
type Filesystem struct {
	RO, RW, Tmpfs, Hide []string
	Mounts              []Mount
	Chdir               string // default ${CWD}
	// TmpfsSize caps each of the jail's tmpfs mounts, in bytes (0: the
	// default, 1 GiB; never more than limits.memory).
	TmpfsSize int64
	// Caches are cache mounts, "NAME:DST": a directory warden keeps per
	// user, policy and NAME, writable in the jail at DST only.
	Caches []string
	// Overlay are host directories shown copy-on-write (overlayfs with a
	// tmpfs upper layer): the jail writes, the directory never changes.
	Overlay []string
	// Trace are directories of the jail's view shown through warden's
	// tracing file system (FUSE, served outside the jail), read-only or
	// read-write as they would otherwise be; the report lists what the
	// command read, wrote, created and deleted in each.
	Trace []string
}

// Mount is one entry of [[filesystem.mount]].
type Mount struct {
	Type     string // "bind" or "tmpfs"
	Source   string // bind only: absolute host path
	Target   string // absolute path in the jail
	ReadOnly bool
	Optional bool  // bind only: skip when Source does not exist
	Size     int64 // tmpfs only: bytes, 0 = kernel default
}

// Network describes the jail's network.
type Network struct {
	Mode              string   // "none" (default), "host", "pasta", "slirp4netns", "auto"
	Publish           []string // "[IP:]HOSTPORT:JAILPORT[/tcp|/udp]"
	AllowHostLoopback bool
}

// Process describes the payload process.
type Process struct {
	EnvPass   []string // globs (path.Match) of host variables that pass
	Env       map[string]string
	Hostname  string        // default "warden"
	Timeout   time.Duration // 0 = none
	KillGrace time.Duration // default 5s
	// Rlimits by name: nofile, nproc, core, cpu, fsize, as, stack, memlock, data.
	Rlimits map[string]Rlimit
	// CapAdd holds capability names, normalized to "CAP_NET_BIND_SERVICE".
	CapAdd []string
}

// RlimInfinity is the value of "unlimited" in an [Rlimit].
const RlimInfinity = ^uint64(0)

// Rlimit is one resource limit; RlimInfinity means unlimited.
type Rlimit struct {
	Soft, Hard uint64
}

// Limits are cgroup v2 limits.
type Limits struct {
	// Enforce is "required", "best-effort" or "off". Unset, it is "required"
	// when any limit is set and "off" otherwise.
	Enforce    string
	Memory     int64 // bytes, 0 = unset
	MemorySwap int64 // bytes, 0 = unset
	Pids       int64
	CPUs       float64
	CPUWeight  int // 1..10000, 0 = unset
	IOWeight   int // 1..10000, 0 = unset
}

// Seccomp selects the syscall filter.
type Seccomp struct {
	Profile      string   // "default", "strict", "none" or an absolute path to a JSON profile
	Allow, Deny  []string // syscall names added to / removed from the profile
	Errno        string   // errno name for denied calls, default "EPERM"
	Action       string   // "errno" (default), "kill" or "log"
	NestedUserns bool
	IOUring      bool
	Ptrace       bool // allow ptrace, process_vm_*, kcmp, pidfd_getfd, process_madvise
	Audit        bool
}

// Report says where the run report goes.
type Report struct {
	File string // "" = none, "fd:N", or an absolute path
}

// IsSet reports whether some layer (a file or a flag) set key or anything
// below it: an element of a list, an entry of a table, a key of a section
// ("network").
func (p *Policy) IsSet(key string) bool {
	if _, ok := p.Origin[key]; ok {
		return true
	}
	for k := range p.Origin {
		if strings.HasPrefix(k, key+"[") || strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

// PosError is a problem in a policy, at a position. Every error from Parse and
// Load about a policy's content is a *PosError.
type PosError struct {
	File      string // the file path, "builtin:NAME", or "command line"
	Line, Col int    // 1-based; 0 only for errors not tied to a place in a file
	Key       string // the key, e.g. "limits.memory" or "filesystem.mount[1].target"
	Msg       string // what is wrong
	Hint      string // what would be right; may be empty
	// Here says the policy itself is fine, but not where it was started:
	// two of a built-in's paths are one directory here ($HOME as the
	// project, say).
	Here bool
}

// Error renders "policy FILE:L:C: KEY: MSG; HINT".
func (e *PosError) Error() string {
	var b strings.Builder
	b.WriteString("policy ")
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

//go:embed *.toml
var builtinFS embed.FS

// Builtins returns the names of the built-in policies, sorted.
func Builtins() []string {
	entries, err := builtinFS.ReadDir(".")
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".toml"))
	}
	sort.Strings(names)
	return names
}

// BuiltinSource returns the TOML text of the built-in policy name.
func BuiltinSource(name string) ([]byte, bool) {
	if !ValidName(name) {
		return nil, false
	}
	b, err := builtinFS.ReadFile(name + ".toml")
	if err != nil {
		return nil, false
	}
	return b, true
}
