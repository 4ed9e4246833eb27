package policies

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Format renders the resolved policy as canonical TOML: every key written
// out, in a fixed order, with no extends. Parsing the result gives a policy
// with the same Hash. It is what `warden policy show/explain` prints.
func Format(p *Policy) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# warden policy %q, resolved\n", p.Name)
	fmt.Fprintf(&b, "# source: %s\n", p.Source)
	if len(p.Chain) > 0 {
		fmt.Fprintf(&b, "# chain: %s\n", strings.Join(p.Chain, " -> "))
	}
	fmt.Fprintf(&b, "# hash: sha256:%s\n", p.Hash)
	if p.Description != "" {
		fmt.Fprintf(&b, "description = %s\n", quote(p.Description))
	}
	b.Write(formatBody(p))
	return b.Bytes()
}

// hashOf hashes the canonical body: everything that shapes the jail, and
// nothing about how the policy was written (name, source, chain, comments).
func hashOf(p *Policy) string {
	sum := sha256.Sum256(formatBody(p))
	return hex.EncodeToString(sum[:])
}

func formatBody(p *Policy) []byte {
	var b bytes.Buffer
	kv := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, v) }
	str := func(s string) string { return quote(escapeDollars(s)) }

	b.WriteString("\n[identity]\n")
	kv("user", str(p.Identity.User))
	kv("map", str(p.Identity.Map))

	fs := p.Filesystem
	b.WriteString("\n[filesystem]\n")
	kv("ro", list(fs.RO))
	kv("rw", list(fs.RW))
	kv("tmpfs", list(fs.Tmpfs))
	kv("hide", list(fs.Hide))
	kv("chdir", str(fs.Chdir))
	if len(fs.Caches) > 0 {
		kv("caches", list(fs.Caches))
	}
	if len(fs.Overlay) > 0 {
		kv("overlay", list(fs.Overlay))
	}
	if len(fs.Trace) > 0 {
		kv("trace", list(fs.Trace))
	}
	if fs.TmpfsSize != 0 {
		kv("tmpfs_size", str(formatSize(fs.TmpfsSize)))
	}
	for _, m := range fs.Mounts {
		b.WriteString("\n[[filesystem.mount]]\n")
		kv("type", str(m.Type))
		if m.Type == "bind" {
			kv("source", str(m.Source))
		}
		kv("target", str(m.Target))
		kv("readonly", strconv.FormatBool(m.ReadOnly))
		if m.Type == "bind" {
			kv("optional", strconv.FormatBool(m.Optional))
		}
		if m.Size != 0 {
			kv("size", str(formatSize(m.Size)))
		}
	}

	b.WriteString("\n[network]\n")
	kv("mode", str(p.Network.Mode))
	kv("publish", list(p.Network.Publish))
	kv("allow_host_loopback", strconv.FormatBool(p.Network.AllowHostLoopback))

	pr := p.Process
	b.WriteString("\n[process]\n")
	kv("env_pass", list(pr.EnvPass))
	kv("env", envTable(pr.Env))
	kv("hostname", str(pr.Hostname))
	kv("timeout", str(formatDuration(pr.Timeout)))
	kv("kill_grace", str(formatDuration(pr.KillGrace)))
	kv("rlimits", rlimitTable(pr.Rlimits))
	kv("cap_add", list(pr.CapAdd))

	l := p.Limits
	b.WriteString("\n[limits]\n")
	kv("enforce", str(l.Enforce))
	if l.Memory != 0 {
		kv("memory", str(formatSize(l.Memory)))
	}
	if l.MemorySwap != 0 {
		kv("memory_swap", str(formatSize(l.MemorySwap)))
	}
	if l.Pids != 0 {
		kv("pids", strconv.FormatInt(l.Pids, 10))
	}
	if l.CPUs != 0 {
		kv("cpus", formatFloat(l.CPUs))
	}
	if l.CPUWeight != 0 {
		kv("cpu_weight", strconv.Itoa(l.CPUWeight))
	}
	if l.IOWeight != 0 {
		kv("io_weight", strconv.Itoa(l.IOWeight))
	}

	s := p.Seccomp
	b.WriteString("\n[seccomp]\n")
	kv("profile", str(s.Profile))
	kv("allow", list(s.Allow))
	kv("deny", list(s.Deny))
	kv("errno", str(s.Errno))
	kv("action", str(s.Action))
	kv("nested_userns", strconv.FormatBool(s.NestedUserns))
	kv("io_uring", strconv.FormatBool(s.IOUring))
	kv("ptrace", strconv.FormatBool(s.Ptrace))
	kv("audit", strconv.FormatBool(s.Audit))

	b.WriteString("\n[report]\n")
	kv("file", str(p.Report.File))
	return b.Bytes()
}

func list(items []string) string {
	if len(items) == 0 {
		return "[]"
	}
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = quote(escapeDollars(s))
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func envTable(env map[string]string) string {
	if len(env) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = quote(k) + " = " + quote(escapeDollars(env[k]))
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

func rlimitTable(r map[string]Rlimit) string {
	if len(r) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	one := func(n uint64) string {
		if n == RlimInfinity {
			return `"unlimited"`
		}
		return strconv.FormatUint(n, 10)
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := r[k]
		if v.Soft == v.Hard {
			parts[i] = k + " = " + one(v.Soft)
		} else {
			parts[i] = fmt.Sprintf("%s = { soft = %s, hard = %s }", k, one(v.Soft), one(v.Hard))
		}
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

// formatDuration writes d in its largest exact unit ("30m", "90s").
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	for _, u := range []struct {
		s string
		d time.Duration
	}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}, {"us", time.Microsecond}} {
		if d != 0 && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.s
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}

func formatFloat(x float64) string {
	s := strconv.FormatFloat(x, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// quote writes s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// QuotePath renders a literal path as a TOML string of a policy: quoted, and
// every "$" doubled so that no ${VAR} in it is expanded.
func QuotePath(p string) string { return quote(escapeDollars(p)) }

// QuoteVarPath is QuotePath for a path that begins with a policy variable:
// "${" + name + "}" followed by the literal rest.
func QuoteVarPath(name, rest string) string { return quote("${" + name + "}" + escapeDollars(rest)) }

// QuoteString renders s as a TOML basic string.
func QuoteString(s string) string { return quote(s) }
