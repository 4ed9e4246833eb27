package policies

import (
	"fmt"
	"strings"
	"time"
)

// kind is how a key's value is written and decoded.
type kind int

const (
	kString   kind = iota // a string, variables expanded
	kEnum                 // one of field.enum
	kPath                 // an absolute path after expansion, cleaned
	kBool                 // true | false
	kInt                  // an integer in [min, max]
	kFloat                // a number in (0, max]
	kSize                 // "512M", "2G", "1.5G" or an integer of bytes
	kDuration             // "30m", "5s" (time.ParseDuration)
	kList                 // an array of elem
	kEnvMap               // a table of NAME = "value"
	kRlimits              // a table of NAME = N | "unlimited" | {soft, hard}
	kMounts               // an array of tables: [[filesystem.mount]]
)

// field describes one key of the policy language. The order of schema is the
// order of Format's output.
type field struct {
	key  string
	kind kind
	elem kind     // kList: kString or kPath
	enum []string // kEnum
	// check validates and normalizes a string (kString, kList elements of
	// kString); it returns the normal form, or a message and a hint.
	check    func(s string) (norm, msg, hint string)
	min, max int64 // kInt; max also bounds kFloat
}

var schema = []field{
	{key: "identity.user", kind: kEnum, enum: []string{"self", "root"}},
	{key: "identity.map", kind: kEnum, enum: []string{"auto", "single", "subuid"}},

	{key: "filesystem.ro", kind: kList, elem: kPath},
	{key: "filesystem.rw", kind: kList, elem: kPath},
	{key: "filesystem.tmpfs", kind: kList, elem: kPath},
	{key: "filesystem.hide", kind: kList, elem: kPath},
	{key: "filesystem.mount", kind: kMounts},
	{key: "filesystem.chdir", kind: kPath},
	{key: "filesystem.tmpfs_size", kind: kSize},
	{key: "filesystem.caches", kind: kList, elem: kString, check: checkCache},
	{key: "filesystem.overlay", kind: kList, elem: kPath},
	{key: "filesystem.trace", kind: kList, elem: kPath},

	{key: "network.mode", kind: kEnum, enum: []string{"none", "host", "pasta", "slirp4netns", "auto"}},
	{key: "network.publish", kind: kList, elem: kString, check: checkPublish},
	{key: "network.allow_host_loopback", kind: kBool},

	{key: "process.env_pass", kind: kList, elem: kString, check: checkGlob},
	{key: "process.env", kind: kEnvMap},
	{key: "process.hostname", kind: kString, check: checkHostname},
	{key: "process.timeout", kind: kDuration},
	{key: "process.kill_grace", kind: kDuration},
	{key: "process.rlimits", kind: kRlimits},
	{key: "process.cap_add", kind: kList, elem: kString, check: checkCap},

	{key: "limits.enforce", kind: kEnum, enum: []string{"required", "best-effort", "off"}},
	{key: "limits.memory", kind: kSize},
	{key: "limits.memory_swap", kind: kSize},
	{key: "limits.pids", kind: kInt, min: 1, max: 1 << 22},
	{key: "limits.cpus", kind: kFloat, max: 4096},
	{key: "limits.cpu_weight", kind: kInt, min: 1, max: 10000},
	{key: "limits.io_weight", kind: kInt, min: 1, max: 10000},

	{key: "seccomp.profile", kind: kString, check: checkProfile},
	{key: "seccomp.allow", kind: kList, elem: kString, check: checkSyscall},
	{key: "seccomp.deny", kind: kList, elem: kString, check: checkSyscall},
	{key: "seccomp.errno", kind: kString, check: checkErrno},
	{key: "seccomp.action", kind: kEnum, enum: []string{"errno", "kill", "log"}},
	{key: "seccomp.nested_userns", kind: kBool},
	{key: "seccomp.io_uring", kind: kBool},
	{key: "seccomp.ptrace", kind: kBool},
	{key: "seccomp.audit", kind: kBool},

	{key: "report.file", kind: kString, check: checkReport},
}

// topKeys are the keys allowed at the top level of a file.
var topKeys = []string{"extends", "description", "replace", "identity", "filesystem", "network", "process", "limits", "seccomp", "report"}

// mountKeys are the keys of one [[filesystem.mount]] table.
var mountKeys = []string{"type", "source", "target", "readonly", "optional", "size"}

// rlimitNames are the rlimits a policy may set; bytes marks those measured
// in bytes, which also accept sizes ("64M").
var rlimitNames = map[string]bool{
	"nofile": false, "nproc": false, "core": true, "cpu": false, "fsize": true,
	"as": true, "stack": true, "memlock": true, "data": true,
}

func lookupField(key string) (field, bool) {
	for _, f := range schema {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

// sectionKeys returns the keys of section ("limits") without the prefix.
func sectionKeys(section string) []string {
	var keys []string
	for _, f := range schema {
		if s, k, _ := strings.Cut(f.key, "."); s == section {
			keys = append(keys, k)
		}
	}
	return keys
}

// defaults fills p with the values a key has when no layer sets it.
// DefaultMap is identity.map when no policy in the chain sets it (and what
// --map's help says): the caller's own id only, the fastest start, with no
// setuid helper. It is defined here alone.
const DefaultMap = "single"

func defaults(p *Policy, env Env) {
	p.Identity = Identity{User: "self", Map: DefaultMap}
	p.Filesystem.Chdir = "/"
	if strings.HasPrefix(env.CWD, "/") {
		p.Filesystem.Chdir = cleanPath(env.CWD)
	}
	p.Network.Mode = "none"
	p.Process.Hostname = "warden"
	p.Process.KillGrace = 5 * time.Second
	p.Limits.Enforce = "off" // "required" once a limit is set, see resolve
	p.Seccomp = Seccomp{Profile: "default", Errno: "EPERM", Action: "errno"}
}

// ptr returns a pointer to the Policy field behind a scalar or list key.
// Maps and mounts are handled by their callers.
func (p *Policy) ptr(key string) any {
	switch key {
	case "identity.user":
		return &p.Identity.User
	case "identity.map":
		return &p.Identity.Map
	case "filesystem.ro":
		return &p.Filesystem.RO
	case "filesystem.rw":
		return &p.Filesystem.RW
	case "filesystem.tmpfs":
		return &p.Filesystem.Tmpfs
	case "filesystem.hide":
		return &p.Filesystem.Hide
	case "filesystem.caches":
		return &p.Filesystem.Caches
	case "filesystem.overlay":
		return &p.Filesystem.Overlay
	case "filesystem.trace":
		return &p.Filesystem.Trace
	case "filesystem.tmpfs_size":
		return &p.Filesystem.TmpfsSize
	case "filesystem.chdir":
		return &p.Filesystem.Chdir
	case "network.mode":
		return &p.Network.Mode
	case "network.publish":
		return &p.Network.Publish
	case "network.allow_host_loopback":
		return &p.Network.AllowHostLoopback
	case "process.env_pass":
		return &p.Process.EnvPass
	case "process.hostname":
		return &p.Process.Hostname
	case "process.timeout":
		return &p.Process.Timeout
	case "process.kill_grace":
		return &p.Process.KillGrace
	case "process.cap_add":
		return &p.Process.CapAdd
	case "limits.enforce":
		return &p.Limits.Enforce
	case "limits.memory":
		return &p.Limits.Memory
	case "limits.memory_swap":
		return &p.Limits.MemorySwap
	case "limits.pids":
		return &p.Limits.Pids
	case "limits.cpus":
		return &p.Limits.CPUs
	case "limits.cpu_weight":
		return &p.Limits.CPUWeight
	case "limits.io_weight":
		return &p.Limits.IOWeight
	case "seccomp.profile":
		return &p.Seccomp.Profile
	case "seccomp.allow":
		return &p.Seccomp.Allow
	case "seccomp.deny":
		return &p.Seccomp.Deny
	case "seccomp.errno":
		return &p.Seccomp.Errno
	case "seccomp.action":
		return &p.Seccomp.Action
	case "seccomp.nested_userns":
		return &p.Seccomp.NestedUserns
	case "seccomp.io_uring":
		return &p.Seccomp.IOUring
	case "seccomp.ptrace":
		return &p.Seccomp.Ptrace
	case "seccomp.audit":
		return &p.Seccomp.Audit
	case "report.file":
		return &p.Report.File
	}
	panic(fmt.Sprintf("BUG(warden): policies: no field for key %q; this should not have happened; please report", key))
}

// set stores a decoded value v into the field behind key.
func (p *Policy) set(key string, v any) {
	switch ptr := p.ptr(key).(type) {
	case *string:
		*ptr = v.(string)
	case *bool:
		*ptr = v.(bool)
	case *time.Duration:
		*ptr = v.(time.Duration)
	case *int64:
		*ptr = v.(int64)
	case *int:
		*ptr = int(v.(int64))
	case *float64:
		*ptr = v.(float64)
	case *[]string:
		*ptr = append(*ptr, v.(string))
	}
}
