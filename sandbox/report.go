package sandbox

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/warden-sandbox/warden/sandbox/cgroup"
	"github.com/warden-sandbox/warden/sandbox/mount"
	"github.com/warden-sandbox/warden/sandbox/writeset"
)

// ReportSchema is the version of the run report's JSON schema
// (docs/report.md). It changes only when a field changes meaning or
// disappears; new fields may appear within a version.
const ReportSchema = 1

// Protection states.
const (
	StateEnforced = "enforced"
	StateDegraded = "degraded"
	StateOff      = "off"
)

// Report is the run report (--report): what was enforced, how the run
// ended, what it used.
type Report struct {
	Schema      int          `json:"schema"`
	Warden      string       `json:"warden_version"`
	Policy      PolicyRef    `json:"policy"`
	Argv        []string     `json:"argv"`
	Protections []Protection `json:"protections"`
	Ending      ReportEnding `json:"ending"`
	Usage       ReportUsage  `json:"usage"`
	Warnings    []string     `json:"warnings"`
	Error       *ReportError `json:"error,omitempty"`
	// Network describes the network mode, helper and traffic.
	Network *ReportNetwork `json:"network,omitempty"`
	// SeccompDenials lists denied syscalls (with --seccomp-audit).
	SeccompDenials []ReportDenial `json:"seccomp_denials,omitempty"`
	// Overlays are what the command wrote in each overlay (--overlay,
	// --rootfs, --image): the write-set of its upper layer.
	Overlays []ReportOverlay `json:"overlays,omitempty"`
	// Accesses are what the command did in each traced directory
	// (--trace), by path relative to it.
	Accesses []ReportAccesses `json:"accesses,omitempty"`
}

// ReportAccesses is the access record of one traced directory.
type ReportAccesses struct {
	Target   string   `json:"target"`
	Source   string   `json:"source"`
	ReadOnly bool     `json:"read_only"`
	Read     []string `json:"read"`
	Written  []string `json:"written"`
	Created  []string `json:"created"`
	Deleted  []string `json:"deleted"`
	StatOnly []string `json:"stat_only"`
	Error    string   `json:"error,omitempty"`
}

// ReportOverlay is the write-set of one overlay.
type ReportOverlay struct {
	Target   string           `json:"target"`
	Source   string           `json:"source"`
	Summary  string           `json:"summary"`
	Created  []writeset.Entry `json:"created"`
	Modified []writeset.Entry `json:"modified"`
	Deleted  []writeset.Entry `json:"deleted"`
	KeptIn   string           `json:"kept_in,omitempty"`
	Error    string           `json:"error,omitempty"`
}

// ReportNetwork is the network part of the report.
type ReportNetwork struct {
	Mode          string   `json:"mode"`
	Helper        string   `json:"helper,omitempty"`
	HelperVersion string   `json:"helper_version,omitempty"`
	HelperPID     int      `json:"helper_pid,omitempty"`
	Published     []string `json:"published"`
	// Forwarder says what forwards the published ports (pasta itself, or
	// slirp4netns driven by rootlesskit's port driver).
	Forwarder    string `json:"forwarder,omitempty"`
	DNS          string `json:"dns,omitempty"`
	HostLoopback bool   `json:"host_loopback"`
	// HostLoopbackAddr is where the host's loopback is reached from inside
	// when HostLoopback is true.
	HostLoopbackAddr string `json:"host_loopback_addr,omitempty"`
	RxBytes          uint64 `json:"rx_bytes"`
	TxBytes          uint64 `json:"tx_bytes"`
}

// ReportDenial is one syscall the seccomp profile denied during the run.
type ReportDenial struct {
	Syscall   string   `json:"syscall"`
	Count     int      `json:"count"`
	FirstPID  int      `json:"first_pid"`
	FirstArgv []string `json:"first_argv"`
}

// PolicyRef names the policy a run used.
type PolicyRef struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Hash   string `json:"hash"`
}

// Protection is one line of "what was in force".
type Protection struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Detail string `json:"detail"`
}

// ReportEnding says how the run ended.
type ReportEnding struct {
	Kind       string `json:"kind"` // exit|signal|timeout|oom|pids-limit|seccomp-kill|setup-error
	ExitStatus int    `json:"exit_status"`
	Code       *int   `json:"code,omitempty"`
	Signal     string `json:"signal,omitempty"`
}

// ReportUsage is the run's resource use.
type ReportUsage struct {
	WallMs     float64 `json:"wall_ms"`
	UserUsec   int64   `json:"user_usec"`
	SystemUsec int64   `json:"system_usec"`
	MaxRSSKiB  int64   `json:"max_rss_kib"`
	// Cgroup holds the cgroup's accounting when limits ran in one.
	Cgroup map[string]int64 `json:"cgroup,omitempty"`
}

// ReportError is the failure of a run that ended in setup-error.
type ReportError struct {
	Message string   `json:"message"`
	Hints   []string `json:"hints"`
}

// Protections lists, from a plan, what a run puts in force. applied says
// whether setup completed (false after a setup error: nothing was in force).
func Protections(p *Plan, applied bool) []Protection {
	st := func(s string) string {
		if !applied {
			return StateOff
		}
		return s
	}
	ns := func(name string, flag uintptr, detail string) Protection {
		if p.Cloneflags&flag == 0 {
			return Protection{Name: name, State: StateOff, Detail: "shared with the host"}
		}
		return Protection{Name: name, State: st(StateEnforced), Detail: detail}
	}
	var mapDesc []string
	for _, m := range p.Maps.UID {
		mapDesc = append(mapDesc, m.String())
	}
	out := []Protection{
		ns("userns", syscall.CLONE_NEWUSER, fmt.Sprintf("map=%s uid %d inside; uid_map %s", p.MapMode, p.Maps.InsideUID, strings.Join(mapDesc, ", "))),
		ns("mountns", syscall.CLONE_NEWNS, "own mount namespace"),
		ns("pidns", syscall.CLONE_NEWPID, "own pid namespace; warden init is PID 1"),
		ns("netns", syscall.CLONE_NEWNET, "own network namespace"),
		ns("ipcns", syscall.CLONE_NEWIPC, "own IPC namespace"),
		ns("utsns", syscall.CLONE_NEWUTS, "hostname "+p.Hostname),
		ns("cgroupns", syscall.CLONE_NEWCGROUP, "own cgroup namespace"),
		{Name: "mounts", State: st(StateEnforced), Detail: mountSummary(p.Mounts)},
		{Name: "no_new_privs", State: st(StateEnforced), Detail: "set before exec"},
		capsProtection(p, st),
		{Name: "fds", State: st(StateEnforced), Detail: fmt.Sprintf("0-2 and %d passed", len(p.PassFDs))},
		{Name: "environment", State: st(StateEnforced), Detail: fmt.Sprintf("%d variables (allow-list)", len(p.Env))},
		netProtection(p, st),
		seccompProtection(p, st),
	}
	for _, r := range p.Rlimits {
		out = append(out, Protection{Name: "rlimit." + r.Name, State: st(StateEnforced), Detail: fmt.Sprintf("soft %s hard %s", limitStr(r.Soft), limitStr(r.Hard))})
	}
	if p.Timeout > 0 {
		out = append(out, Protection{Name: "timeout", State: st(StateEnforced), Detail: fmt.Sprintf("%s, then SIGTERM and %s grace", p.Timeout, p.KillGrace)})
	}
	return out
}

func netProtection(p *Plan, st func(string) string) Protection {
	switch p.Net {
	case "host":
		return Protection{Name: "network", State: StateOff, Detail: "mode host: the jail shares the host's network namespace " +
			"(unsafe: host loopback services, abstract unix sockets and every interface are reachable)"}
	case "none":
		return Protection{Name: "network", State: st(StateEnforced), Detail: "mode none: own network namespace, loopback only"}
	}
	d := "mode " + p.Net + ": own network namespace, outbound through a user-mode helper; host loopback "
	if p.NetOpts.AllowHostLoopback {
		d += "reachable (allow_host_loopback)"
	} else {
		d += "blocked"
	}
	return Protection{Name: "network", State: st(StateEnforced), Detail: d}
}

func seccompProtection(p *Plan, st func(string) string) Protection {
	if len(p.Seccomp) == 0 {
		return Protection{Name: "seccomp", State: StateOff, Detail: "profile " + p.SeccompName + ": no filter"}
	}
	d := fmt.Sprintf("profile %s (%d BPF instructions)", p.SeccompName, len(p.Seccomp)/8)
	if p.SeccompAudit {
		d += "; audit on"
	}
	return Protection{Name: "seccomp", State: st(StateEnforced), Detail: d}
}

func capsProtection(p *Plan, st func(string) string) Protection {
	if len(p.Caps) == 0 {
		return Protection{Name: "capabilities", State: st(StateEnforced), Detail: "none (all sets empty, bounding included)"}
	}
	var names []string
	for n, c := range capNames {
		for _, k := range p.Caps {
			if k == c {
				names = append(names, "CAP_"+n)
			}
		}
	}
	sort.Strings(names)
	return Protection{Name: "capabilities", State: st(StateEnforced), Detail: "kept in the jail's user namespace: " + strings.Join(names, ",")}
}

func limitStr(v uint64) string {
	if v == ^uint64(0) {
		return "unlimited"
	}
	return fmt.Sprint(v)
}

// nonNil makes an empty list render as [] in JSON, not null.
func nonNil[T any](e []T) []T {
	if e == nil {
		return []T{}
	}
	return e
}

func mountSummary(ops []mount.Op) string {
	var rw, ro, ov, tr []string
	for _, o := range ops {
		if o.Kind == mount.Overlay {
			ov = append(ov, o.Target)
		}
		if o.Kind == mount.Trace {
			tr = append(tr, o.Target)
		}
		if o.Kind == mount.Bind || o.Kind == mount.Trace {
			if o.ReadOnly {
				ro = append(ro, o.Target)
			} else {
				rw = append(rw, o.Target)
			}
		}
	}
	sum := fmt.Sprintf("%d ops; read-only: %s; read-write: %s", len(ops), strings.Join(ro, " "), strings.Join(rw, " "))
	if len(ov) > 0 {
		sum += "; copy-on-write (overlay, writes discarded): " + strings.Join(ov, " ")
	}
	if len(tr) > 0 {
		sum += "; traced (accesses recorded): " + strings.Join(tr, " ")
	}
	return sum
}

// NewReport builds the report of a finished (or failed) run. exitStatus is
// the status warden exits with.
func NewReport(p *Plan, pol PolicyRef, res *Result, runErr error, exitStatus int, warns []Warning) *Report {
	if p != nil && pol == (PolicyRef{}) {
		pol = p.Policy
	}
	r := &Report{Schema: ReportSchema, Warden: Version, Policy: pol, Warnings: []string{}}
	for _, w := range warns {
		r.Warnings = append(r.Warnings, w.String())
	}
	r.Ending.ExitStatus = exitStatus
	if p != nil {
		r.Argv = p.Argv
	}
	setupFailed := runErr != nil && (res == nil || res.Ending == EndSetupError)
	if p != nil {
		r.Protections = Protections(p, !setupFailed)
	} else {
		r.Protections = []Protection{}
	}
	if res != nil {
		for _, w := range res.Warnings {
			r.Warnings = append(r.Warnings, w.String())
		}
		names := make([]string, 0, len(res.Limits))
		for n := range res.Limits {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			state, why, _ := strings.Cut(res.Limits[n], ": ")
			if state == StateOff && why == "" {
				why = "not requested"
			}
			if setupFailed {
				state = StateOff
			}
			r.Protections = append(r.Protections, Protection{Name: "limit." + n, State: state, Detail: why})
		}
		for _, d := range res.Denials {
			r.SeccompDenials = append(r.SeccompDenials, ReportDenial{Syscall: d.Syscall, Count: d.Count, FirstPID: d.FirstPID, FirstArgv: d.FirstArgv})
		}
		if n := res.Net; n != nil {
			rn := &ReportNetwork{Mode: string(n.Mode), Helper: n.Helper, HelperVersion: n.Version, HelperPID: n.HelperPID, DNS: n.DNS,
				HostLoopback: n.HostLoopback, HostLoopbackAddr: n.HostLoopbackAddr, RxBytes: res.NetRx, TxBytes: res.NetTx, Published: []string{},
				Forwarder: n.Forwarder}
			for _, pp := range n.Published {
				rn.Published = append(rn.Published, pp.String())
			}
			r.Network = rn
		}
		for _, ov := range res.Overlays {
			ro := ReportOverlay{Target: ov.Target, Source: ov.Source, Summary: ov.Set.Summary(), KeptIn: ov.Kept,
				Created: nonNil(ov.Set.Created), Modified: nonNil(ov.Set.Modified), Deleted: nonNil(ov.Set.Deleted)}
			if ov.Err != nil {
				ro.Error = ov.Err.Error()
			}
			r.Overlays = append(r.Overlays, ro)
		}
		for _, tr := range res.Traces {
			a := tr.Accesses
			ra := ReportAccesses{Target: tr.Target, Source: tr.Source, ReadOnly: tr.ReadOnly,
				Read: nonNil(a.Read), Written: nonNil(a.Written), Created: nonNil(a.Created), Deleted: nonNil(a.Deleted), StatOnly: nonNil(a.StatOnly)}
			if tr.Err != nil {
				ra.Error = tr.Err.Error()
			}
			r.Accesses = append(r.Accesses, ra)
		}
		if c := res.Cgroup; c != nil {
			r.Usage.Cgroup = CgroupUsage(c)
		}
		r.Usage.WallMs = float64(res.Wall) / float64(time.Millisecond)
		if res.Usage != nil {
			r.Usage.UserUsec, r.Usage.SystemUsec, r.Usage.MaxRSSKiB = res.Usage.UserUsec, res.Usage.SystemUsec, res.Usage.MaxRSSKiB
		}
	}
	switch {
	case setupFailed:
		r.Ending.Kind = string(EndSetupError)
		hints := Diagnose(runErr)
		if hints == nil {
			hints = []string{}
		}
		r.Error = &ReportError{Message: runErr.Error(), Hints: hints}
	case res.Ending == EndContainer:
		r.Ending.Kind = "created"
	case res.Ending == EndExit:
		r.Ending.Kind = string(EndExit)
		c := res.Code
		r.Ending.Code = &c
	default:
		r.Ending.Kind = string(res.Ending)
		if res.Signal != 0 {
			r.Ending.Signal = unixSignalName(res.Signal)
		}
	}
	return r
}

// CgroupUsage is the report's usage.cgroup: a jail cgroup's accounting.
func CgroupUsage(c *cgroup.Stats) map[string]int64 {
	return map[string]int64{"memory_peak": c.MemoryPeak, "oom": c.OOM, "oom_kill": c.OOMKill,
		"cpu_usage_usec": c.CPUUsageUsec, "cpu_user_usec": c.CPUUserUsec, "cpu_system_usec": c.CPUSystemUsec,
		"cpu_throttled_usec": c.ThrottledUsec, "pids_peak": c.PidsPeak, "pids_max_events": c.PidsMaxEvents}
}

// JSON renders the report, indented, with a final newline.
func (r *Report) JSON() []byte {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		panic(bug(err))
	}
	return append(b, '\n')
}
