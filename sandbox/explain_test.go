package sandbox

import (
	"io/fs"
	"path"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/warden-sandbox/warden/sandbox/cgroup"
	"github.com/warden-sandbox/warden/sandbox/mount"
	"github.com/warden-sandbox/warden/seccomp"
	"github.com/warden-sandbox/warden/userns"
)

// explainFileInfo is a directory.
type explainFileInfo struct{ name string }

func (f explainFileInfo) Name() string       { return f.name }
func (f explainFileInfo) Size() int64        { return 0 }
func (f explainFileInfo) Mode() fs.FileMode  { return fs.ModeDir | 0o755 }
func (f explainFileInfo) ModTime() time.Time { return time.Time{} }
func (f explainFileInfo) IsDir() bool        { return true }
func (f explainFileInfo) Sys() any           { return nil }

// explainFakeHost is bob (2000) on a host without merged /usr and without
// subordinate ids, working in /work. Its environment carries secrets.
func explainFakeHost() *Host {
	dirs := map[string]bool{"/usr": true, "/bin": true, "/lib": true, "/etc": true, "/var": true, "/var/lib": true, "/work": true,
		"/home/bob": true}
	stat := func(p string) (fs.FileInfo, error) {
		if dirs[p] {
			return explainFileInfo{path.Base(p)}, nil
		}
		return nil, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
	}
	return &Host{
		UID: 2000, GID: 2000, User: "bob", Home: "/home/bob", Cwd: "/work",
		Environ: []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "DB_PASSWORD=sw0rdfish", "TERM=dumb"},
		Lstat:   stat, Stat: stat,
		Readlink:     func(p string) (string, error) { return "", &fs.PathError{Op: "readlink", Path: p, Err: syscall.EINVAL} },
		EvalSymlinks: func(p string) (string, error) { _, err := stat(p); return p, err },
	}
}

// explainLines returns the lines of out that start with prefix (after
// trimming the indentation of sub-lines).
func explainLines(out, prefix string) []string {
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimLeft(l, " "), prefix) {
			got = append(got, strings.Join(strings.Fields(l), " "))
		}
	}
	return got
}

func TestExplainResolvedPlan(t *testing.T) {
	h := explainFakeHost()
	o := Options{
		Argv: []string{"sh", "-c", "echo $DB_PASSWORD"}, Map: userns.ModeAuto, EnvPass: []string{"DB_*"}, Env: []string{"TOKEN=abc123"},
		Policy: PolicyRef{Name: "job", Source: "/etc/warden/policies/job.toml", Hash: "beef"},
		Limits: cgroup.Limits{Memory: 512 << 20, Pids: 64, CPUs: 0.5}, LimitsMode: cgroup.Required,
		Seccomp: "none", Timeout: 90 * time.Second, CapAdd: []string{"net_bind_service", "chown"},
		Rlimits: []Rlimit{{Name: "nofile", Soft: 64, Hard: ^uint64(0)}}, PassFDs: []int{7, 4},
	}
	p, warns, err := Resolve(o, h)
	if err != nil {
		t.Fatal(err)
	}
	out := Explain(p, ExplainInfo{Chain: []string{"/etc/warden/policies/job.toml", "builtin:default"},
		Report: "/work/r.json", Warnings: warns})
	for _, secret := range []string{"sw0rdfish", "abc123", "C.UTF-8", "/usr/bin:/bin"} {
		if strings.Contains(out, secret) {
			t.Errorf("Explain printed the value %q of an environment variable:\n%s", secret, out)
		}
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"policy ", []string{"policy job"}},
		{"hash", []string{"hash beef"}},
		{"chain", []string{"chain /etc/warden/policies/job.toml -> builtin:default"}},
		{"command", []string{`command sh -c "echo $DB_PASSWORD"`}},
		{"identity", []string{"identity uid 2000 gid 2000 inside = host uid 2000 gid 2000 (yourself)"}},
		{"map ", []string{"map single: one id, written by warden; setgroups denied"}},
		{"uid_map", []string{"uid_map 2000 2000 1"}},
		{"caps", []string{"caps CAP_CHOWN CAP_NET_BIND_SERVICE (inside the jail's user namespace only)"}},
		{"namespaces", []string{"namespaces user mount pid net ipc uts cgroup"}},
		{"bind", []string{"bind ro /usr -> /usr", "bind ro /bin -> /bin", "bind ro /lib -> /lib", "bind ro /etc -> /etc",
			"bind ro /var/lib -> /var/lib"}},
		{"env", []string{"env 6 variables, names only (values are never shown)"}},
		{"DB_PASSWORD", []string{"DB_PASSWORD"}},
		{"TOKEN", []string{"TOKEN"}},
		{"nofile", []string{"nofile 64/unlimited"}},
		{"core", []string{"core 0/0"}},
		{"limits", []string{"limits required: the run is refused unless every limit below is enforced (cgroup v2)"}},
		{"memory", []string{"memory 512 MiB memory.max=536870912 memory.oom.group=1",
			"memory_swap 0 memory.swap.max=0 (no swap unless memory_swap is set)"}},
		{"pids", []string{"pids 64 pids.max=64"}},
		{"cpus", []string{`cpus 0.5 cpu.max="50000 100000"`}},
		{"seccomp", []string{"seccomp none: no filter"}},
		{"timeout", []string{"timeout 1m30s, then SIGTERM, 5s grace, SIGKILL (exit status 124)"}},
		{"pass fds", []string{"pass fds 7->3 4->4"}},
		{"report", []string{"report /work/r.json"}},
		{"warnings", []string{"warnings 1"}},
		{"map=auto", []string{"map=auto: one-id map: no entry for bob in /etc/subuid and /etc/subgid"}},
	} {
		if d := cmp.Diff(tc.want, explainLines(out, tc.prefix)); d != "" {
			t.Errorf("lines starting %q (-want +got):\n%s\nin:\n%s", tc.prefix, d, out)
		}
	}
	// The mounts are mount.Render's lines, in the plan's order.
	var ops []string
	for _, l := range strings.Split(out, "\n") {
		for _, op := range p.Mounts {
			if l == "  "+op.String() {
				ops = append(ops, l[2:])
				break
			}
		}
	}
	if d := cmp.Diff(strings.Split(strings.TrimSuffix(mount.Render(p.Mounts), "\n"), "\n"), ops); d != "" {
		t.Errorf("mount lines (-want +got):\n%s", d)
	}
}

// TestExplainVariants: Explain(plan) contains each wanted line (fields
// joined by one space) and no line starting with absent.
func TestExplainVariants(t *testing.T) {
	for _, tc := range []struct {
		name   string
		plan   Plan
		info   ExplainInfo
		want   []string
		absent string
	}{
		{"no command", Plan{Argv: []string{"CMD"}}, ExplainInfo{NoCommand: true},
			[]string{"command (none given; add -- CMD [ARGS...])"}, ""},
		{"quoted argv", Plan{Argv: []string{"printf", "a b", "", "x*y"}}, ExplainInfo{},
			[]string{`command printf "a b" "" "x*y"`}, ""},
		{"no policy", Plan{}, ExplainInfo{}, []string{"policy (none)", "source (none)", "hash (none)"}, "chain"},
		{"root inside", Plan{Maps: userns.Maps{UID: []userns.IDMap{{Inside: 0, Host: 1000, Count: 1}},
			GID: []userns.IDMap{{Inside: 0, Host: 1000, Count: 1}}}}, ExplainInfo{},
			[]string{"identity uid 0 gid 0 inside = host uid 1000 gid 1000 (root inside the jail only)"}, ""},
		{"subuid ranges", Plan{MapMode: "subuid", Maps: userns.Maps{Ranges: true}}, ExplainInfo{},
			[]string{"map subuid: subordinate ranges, written by newuidmap/newgidmap; setgroups allowed"}, ""},
		{"empty maps", Plan{}, ExplainInfo{}, []string{"uid_map (empty)", "gid_map (empty)", "caps none"}, ""},
		{"unknown cap number", Plan{Caps: []int{0, 63}}, ExplainInfo{},
			[]string{"caps CAP_CHOWN 63 (inside the jail's user namespace only)"}, ""},
		{"some namespaces", Plan{Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET}, ExplainInfo{},
			[]string{"namespaces user net"}, ""},
		{"no namespaces", Plan{}, ExplainInfo{}, []string{"namespaces (none)"}, ""},
		{"host network", Plan{Net: "host"}, ExplainInfo{},
			[]string{"network host: the host's network (no network isolation)"}, "host lo"},
		{"helper network", Plan{Net: "pasta"}, ExplainInfo{}, []string{"host lo unreachable"}, "publish"},
		{"no rlimits", Plan{}, ExplainInfo{}, []string{"rlimits inherited from warden"}, ""},
		{"best effort", Plan{LimitsMode: cgroup.BestEffort, Limits: cgroup.Limits{MemorySwap: 1 << 30, CPUWeight: 50,
			IOWeight: 10, IOMax: []string{"8:0 wbps=1048576"}}}, ExplainInfo{},
			[]string{"limits best-effort: a limit that cannot be enforced is a warning and a note in the report",
				"memory_swap 1 GiB memory.swap.max=1073741824", "cpu_weight 50 cpu.weight=50",
				`io_weight 10 io.weight="default 10"`, `io_max io.max="8:0 wbps=1048576"`}, "memory "},
		{"limits off", Plan{LimitsMode: cgroup.Off}, ExplainInfo{LimitsHost: &LimitsHost{Missing: map[string]string{"memory": "v1"}}},
			[]string{"limits off: no cgroup is created"}, "this host"},
		{"limits not probed", Plan{LimitsMode: cgroup.Required, Limits: cgroup.Limits{Pids: 9}}, ExplainInfo{},
			[]string{"pids 9 pids.max=9"}, "this host"},
		{"required, host lacks pids", Plan{LimitsMode: cgroup.Required, Limits: cgroup.Limits{Pids: 9, CPUs: 1}},
			ExplainInfo{LimitsHost: &LimitsHost{Missing: map[string]string{"pids": "on cgroup v1", "memory": "on cgroup v1"}}},
			[]string{"this host pids controller unavailable: on cgroup v1",
				"verdict the run would be refused (exit 125); --limits best-effort runs without them"}, "this host memory"},
		{"best-effort, host lacks cpu", Plan{LimitsMode: cgroup.BestEffort, Limits: cgroup.Limits{CPUs: 1}},
			ExplainInfo{LimitsHost: &LimitsHost{Missing: map[string]string{"cpu": "not delegated"}}},
			[]string{"this host cpu controller unavailable: not delegated", "verdict the run would go ahead without cpu, with a warning"}, ""},
		{"host can", Plan{LimitsMode: cgroup.Required, Limits: cgroup.Limits{Memory: 1 << 20}},
			ExplainInfo{LimitsHost: &LimitsHost{Missing: map[string]string{"cpu": "not delegated"}}},
			[]string{"this host can enforce them"}, "verdict"},
		{"host note", Plan{LimitsMode: cgroup.Required, Limits: cgroup.Limits{Memory: 1 << 20}},
			ExplainInfo{LimitsHost: &LimitsHost{Note: "ask systemd"}}, []string{"this host ask systemd"}, "verdict"},
		{"seccomp tuned", Plan{SeccompName: "default", Seccomp: make([]byte, 80), SeccompAudit: true},
			ExplainInfo{Seccomp: seccomp.Options{Errno: "EACCES", Allow: []string{"ptrace"}, Deny: []string{"mount", "umount2"},
				NestedUserns: true, IOUring: true}},
			[]string{"seccomp default: 10 BPF instructions, loaded last on the payload's thread", "denied calls EACCES",
				"allow ptrace", "deny mount umount2", "allowed too nested user namespaces io_uring",
				"audit denied calls are reported"}, ""},
		{"seccomp kill", Plan{SeccompName: "strict", Seccomp: make([]byte, 16)}, ExplainInfo{Seccomp: seccomp.Options{Action: "kill"}},
			[]string{"denied calls kill the process"}, "audit"},
		{"seccomp none", Plan{SeccompName: "none"}, ExplainInfo{}, []string{"seccomp none: no filter"}, "denied calls"},
		{"no timeout", Plan{KillGrace: time.Second}, ExplainInfo{}, []string{"timeout none (kill grace 1s)"}, "pass fds"},
		{"no report, no warnings", Plan{}, ExplainInfo{}, []string{"report (none)"}, "warnings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := Explain(&tc.plan, tc.info)
			lines := explainLines(out, "")
			for _, want := range tc.want {
				if !slices.Contains(lines, want) {
					t.Errorf("no line %q in:\n%s", want, out)
				}
			}
			if tc.absent != "" {
				if got := explainLines(out, tc.absent); len(got) > 0 {
					t.Errorf("lines %q, want none starting %q", got, tc.absent)
				}
			}
		})
	}
}
