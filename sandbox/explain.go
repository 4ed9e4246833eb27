package sandbox

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/warden-sandbox/warden/sandbox/cgroup"
	"github.com/warden-sandbox/warden/sandbox/mount"
	"github.com/warden-sandbox/warden/seccomp"
	"github.com/warden-sandbox/warden/userns"
)

// ExplainInfo is what Explain prints besides the plan: facts that decided the
// plan but that the plan itself does not carry.
type ExplainInfo struct {
	// Chain is the policy's extends chain as sources, leaf first.
	Chain []string
	// NoCommand says the caller gave no command and Argv is a placeholder.
	NoCommand bool
	// Seccomp are the policy's tunings of the profile.
	Seccomp seccomp.Options
	// Report is where the run report would go ("" = nowhere).
	Report string
	// Warnings are Resolve's.
	Warnings []Warning
	// LimitsHost says what this host can do about the limits; nil when
	// not probed.
	LimitsHost *LimitsHost
}

// LimitsHost is what a probe of the host's cgroups found, for Explain.
type LimitsHost struct {
	// Missing are the controllers the host cannot give a jail, each with
	// the reason (cgroup.Report.Missing).
	Missing map[string]string
	// Note is a caveat printed as is ("" for none), e.g. that a delegated
	// scope would first be asked of the systemd user manager.
	Note string
}

// Explain renders p for people: what `warden run` would build, in the order
// it is built, without running anything. It prints the names of the
// variables that reach the payload but never their values: a value may be a
// secret the caller passed on purpose, and explain output ends up in CI logs
// and bug reports.
func Explain(p *Plan, info ExplainInfo) string {
	var b strings.Builder
	kv := func(k, format string, a ...any) { fmt.Fprintf(&b, "%-12s %s\n", k, fmt.Sprintf(format, a...)) }

	kv("policy", "%s", orNone(p.Policy.Name))
	kv("source", "%s", orNone(p.Policy.Source))
	kv("hash", "%s", orNone(p.Policy.Hash))
	if len(info.Chain) > 0 {
		kv("chain", "%s", strings.Join(info.Chain, " -> "))
	}
	if info.NoCommand {
		kv("command", "(none given; add -- CMD [ARGS...])")
	} else {
		kv("command", "%s", quoteArgv(p.Argv))
	}
	kv("cwd", "%s", p.Cwd)
	kv("hostname", "%s", p.Hostname)

	b.WriteString("\n")
	explainIdentity(&b, kv, p)
	kv("namespaces", "%s", strings.Join(cloneNames(p.Cloneflags), " "))

	b.WriteString("\n")
	kv("mounts", "%d, applied in order", len(p.Mounts))
	for _, line := range strings.SplitAfter(mount.Render(p.Mounts), "\n") {
		if line != "" {
			b.WriteString("  " + line)
		}
	}

	b.WriteString("\n")
	kv("network", "%s", explainNet(p.Net))
	for _, port := range p.NetOpts.Publish {
		fmt.Fprintf(&b, "  %-12s %s (host %s:%d -> jail port %d)\n", "publish", port, port.HostIP, port.HostPort, port.JailPort)
	}
	switch {
	case p.NetOpts.AllowHostLoopback:
		fmt.Fprintf(&b, "  %-12s %s\n", "host lo", "reachable through the helper's gateway")
	case p.Net != "none" && p.Net != "host" && p.Net != "":
		fmt.Fprintf(&b, "  %-12s %s\n", "host lo", "unreachable")
	}
	explainEnv(&b, kv, p.Env)
	explainRlimits(&b, kv, p.Rlimits)
	explainLimits(&b, kv, p.Limits, p.LimitsMode)
	explainLimitsHost(&b, p.Limits, p.LimitsMode, info.LimitsHost)
	explainSeccomp(&b, kv, p, info.Seccomp)

	b.WriteString("\n")
	if p.Timeout > 0 {
		kv("timeout", "%s, then SIGTERM, %s grace, SIGKILL (exit status 124)", p.Timeout, p.KillGrace)
	} else {
		kv("timeout", "none (kill grace %s)", p.KillGrace)
	}
	if len(p.PassFDs) > 0 {
		var fds []string
		for i, fd := range p.PassFDs {
			fds = append(fds, fmt.Sprintf("%d->%d", fd, 3+i))
		}
		kv("pass fds", "%s", strings.Join(fds, " "))
	}
	kv("report", "%s", orNone(info.Report))
	if len(info.Warnings) > 0 {
		kv("warnings", "%d", len(info.Warnings))
		for _, w := range info.Warnings {
			b.WriteString("  " + w.String() + "\n")
		}
	}
	return b.String()
}

type kvFunc func(k, format string, a ...any)

func explainIdentity(b *strings.Builder, kv kvFunc, p *Plan) {
	m := p.Maps
	hostUID, who := hostID(m.UID, m.InsideUID), "yourself"
	if m.InsideUID == 0 && hostUID != 0 {
		who = "root inside the jail only"
	}
	kv("identity", "uid %d gid %d inside = host uid %d gid %d (%s)", m.InsideUID, m.InsideGID,
		hostUID, hostID(m.GID, m.InsideGID), who)
	switch {
	case m.Ranges:
		kv("  map", "%s: subordinate ranges, written by newuidmap/newgidmap; setgroups allowed", p.MapMode)
	default:
		kv("  map", "%s: one id, written by warden; setgroups denied", p.MapMode)
	}
	mapLines(b, "  uid_map", m.UID)
	mapLines(b, "  gid_map", m.GID)
	if len(p.Caps) == 0 {
		kv("  caps", "none")
	} else {
		kv("  caps", "%s (inside the jail's user namespace only)", strings.Join(capList(p.Caps), " "))
	}
}

// hostID is the host id that id inside maps to, -1 if unmapped.
func hostID(maps []userns.IDMap, id int) int {
	for _, m := range maps {
		if id >= m.Inside && id < m.Inside+m.Count {
			return m.Host + id - m.Inside
		}
	}
	return -1
}

// mapLines prints maps as "inside host count" triples, one per line.
func mapLines(b *strings.Builder, label string, maps []userns.IDMap) {
	if len(maps) == 0 {
		fmt.Fprintf(b, "%-12s (empty)\n", label)
		return
	}
	for i, m := range maps {
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(b, "%-12s %d %d %d\n", label, m.Inside, m.Host, m.Count)
	}
}

func capList(caps []int) []string {
	byNum := map[int]string{}
	for n, c := range capNames {
		byNum[c] = "CAP_" + n
	}
	var out []string
	for _, c := range caps {
		if n, ok := byNum[c]; ok {
			out = append(out, n)
		} else {
			out = append(out, strconv.Itoa(c))
		}
	}
	return out
}

// cloneNames names the namespaces the clone flags create, in the order of
// the pipeline (DESIGN §4).
func cloneNames(flags uintptr) []string {
	var out []string
	for _, ns := range []struct {
		flag uintptr
		name string
	}{
		{syscall.CLONE_NEWUSER, "user"}, {syscall.CLONE_NEWNS, "mount"}, {syscall.CLONE_NEWPID, "pid"},
		{syscall.CLONE_NEWNET, "net"}, {syscall.CLONE_NEWIPC, "ipc"}, {syscall.CLONE_NEWUTS, "uts"},
		{syscall.CLONE_NEWCGROUP, "cgroup"},
	} {
		if flags&ns.flag != 0 {
			out = append(out, ns.name)
		}
	}
	if len(out) == 0 {
		return []string{"(none)"}
	}
	return out
}

func explainNet(mode string) string {
	switch mode {
	case "", "none":
		return "none: own network namespace with only a loopback device"
	case "host":
		return "host: the host's network (no network isolation)"
	case "pasta", "slirp4netns":
		return mode + ": own network namespace, outbound traffic through the " + mode + " helper"
	case "auto":
		return "auto: own network namespace, outbound through pasta, else slirp4netns"
	}
	return mode
}

func explainEnv(b *strings.Builder, kv kvFunc, env []string) {
	names := make([]string, 0, len(env))
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		names = append(names, k)
	}
	sort.Strings(names)
	kv("env", "%d variables, names only (values are never shown)", len(names))
	for _, n := range names {
		b.WriteString("  " + n + "\n")
	}
}

func explainRlimits(b *strings.Builder, kv kvFunc, rl []Rlimit) {
	if len(rl) == 0 {
		kv("rlimits", "inherited from warden")
		return
	}
	kv("rlimits", "soft/hard; the rest inherited from warden")
	for _, r := range rl {
		fmt.Fprintf(b, "  %-10s %s/%s\n", r.Name, rlimStr(r.Soft), rlimStr(r.Hard))
	}
}

func rlimStr(v uint64) string {
	if v == ^uint64(0) {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

func explainLimits(b *strings.Builder, kv kvFunc, l cgroup.Limits, mode cgroup.Mode) {
	switch mode {
	case cgroup.Required:
		kv("limits", "required: the run is refused unless every limit below is enforced (cgroup v2)")
	case cgroup.BestEffort:
		kv("limits", "best-effort: a limit that cannot be enforced is a warning and a note in the report")
	default:
		kv("limits", "off: no cgroup is created")
	}
	line := func(name, val, file string) { fmt.Fprintf(b, "  %-12s %-12s %s\n", name, val, file) }
	if l.Memory > 0 {
		line("memory", cgroup.FormatSize(l.Memory), "memory.max="+strconv.FormatInt(l.Memory, 10)+" memory.oom.group=1")
	}
	if l.MemorySwap > 0 {
		line("memory_swap", cgroup.FormatSize(l.MemorySwap), "memory.swap.max="+strconv.FormatInt(l.MemorySwap, 10))
	} else if l.Memory > 0 {
		line("memory_swap", "0", "memory.swap.max=0 (no swap unless memory_swap is set)")
	}
	if l.Pids > 0 {
		line("pids", strconv.FormatInt(l.Pids, 10), "pids.max="+strconv.FormatInt(l.Pids, 10))
	}
	if l.CPUs > 0 {
		line("cpus", strconv.FormatFloat(l.CPUs, 'g', -1, 64), `cpu.max="`+cgroup.CPUMax(l.CPUs)+`"`)
	}
	if l.CPUWeight > 0 {
		line("cpu_weight", strconv.Itoa(l.CPUWeight), "cpu.weight="+strconv.Itoa(l.CPUWeight))
	}
	if l.IOWeight > 0 {
		line("io_weight", strconv.Itoa(l.IOWeight), `io.weight="default `+strconv.Itoa(l.IOWeight)+`"`)
	}
	for _, m := range l.IOMax {
		line("io_max", "", `io.max="`+m+`"`)
	}
}

// explainLimitsHost says what the host does to the limits: a run that
// requires them is refused before anything is created, so explain must not
// pretend it would run.
func explainLimitsHost(b *strings.Builder, l cgroup.Limits, mode cgroup.Mode, h *LimitsHost) {
	if h == nil || mode == cgroup.Off || mode == "" || len(l.Controllers()) == 0 {
		return
	}
	var lacking []string
	for _, c := range l.Controllers() {
		if why, ok := h.Missing[c]; ok {
			lacking = append(lacking, c)
			fmt.Fprintf(b, "  %-12s %s controller unavailable: %s\n", "this host", c, why)
		}
	}
	switch {
	case len(lacking) == 0 && h.Note != "":
		fmt.Fprintf(b, "  %-12s %s\n", "this host", h.Note)
	case len(lacking) == 0:
		fmt.Fprintf(b, "  %-12s %s\n", "this host", "can enforce them")
	case mode == cgroup.Required:
		fmt.Fprintf(b, "  %-12s %s\n", "verdict", "the run would be refused (exit 125); --limits best-effort runs without them")
	default:
		fmt.Fprintf(b, "  %-12s %s\n", "verdict", "the run would go ahead without "+strings.Join(lacking, ", ")+", with a warning")
	}
}

func explainSeccomp(b *strings.Builder, kv kvFunc, p *Plan, o seccomp.Options) {
	if len(p.Seccomp) == 0 {
		kv("seccomp", "%s: no filter", orNone(p.SeccompName))
	} else {
		kv("seccomp", "%s: %d BPF instructions, loaded last on the payload's thread", p.SeccompName, len(p.Seccomp)/8)
	}
	denied := "EPERM"
	if o.Errno != "" {
		denied = o.Errno
	}
	switch o.Action {
	case "kill":
		denied = "kill the process"
	case "log":
		denied = "allowed and logged"
	}
	if len(p.Seccomp) > 0 {
		fmt.Fprintf(b, "  %-12s %s\n", "denied calls", denied)
	}
	list := func(name string, v []string) {
		if len(v) > 0 {
			fmt.Fprintf(b, "  %-12s %s\n", name, strings.Join(v, " "))
		}
	}
	list("allow", o.Allow)
	list("deny", o.Deny)
	var also []string
	for _, f := range []struct {
		on   bool
		name string
	}{{o.NestedUserns, "nested user namespaces"}, {o.IOUring, "io_uring"}, {o.Ptrace, "ptrace"}} {
		if f.on {
			also = append(also, f.name)
		}
	}
	list("allowed too", also)
	if p.SeccompAudit {
		fmt.Fprintf(b, "  %-12s %s\n", "audit", "denied calls are reported")
	}
}

func quoteArgv(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`;&|<>(){}*?[]#~") {
			out[i] = strconv.Quote(a)
		} else {
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
