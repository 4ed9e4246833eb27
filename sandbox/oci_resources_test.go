package sandbox

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/warden-sandbox/warden/sandbox/cgroup"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }

// TestLimitsFromResources: linux.resources become the limits `warden run`
// applies; unlimited values set nothing; the rest is named, not dropped.
func TestLimitsFromResources(t *testing.T) {
	for _, tc := range []struct {
		name    string
		r       *specs.LinuxResources
		want    cgroup.Limits
		ignored string
	}{
		{"nil", nil, cgroup.Limits{}, ""},
		{"empty", &specs.LinuxResources{}, cgroup.Limits{}, ""},
		{"memory", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20)}}, cgroup.Limits{Memory: 64 << 20}, ""},
		{"memory+swap", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(96 << 20)}},
			cgroup.Limits{Memory: 64 << 20, MemorySwap: 32 << 20}, ""},
		{"swap equal", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(64 << 20)}},
			cgroup.Limits{Memory: 64 << 20}, ""},
		{"swap unlimited", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(-1)}},
			cgroup.Limits{Memory: 64 << 20}, "memory.swap -1"},
		{"unlimited", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1)}, Pids: &specs.LinuxPids{Limit: i64(-1)},
			CPU: &specs.LinuxCPU{Quota: i64(-1), Period: u64(100000)}}, cgroup.Limits{}, ""},
		{"pids", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(32)}}, cgroup.Limits{Pids: 32}, ""},
		{"cpu", &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(50000), Period: u64(200000)}}, cgroup.Limits{CPUs: 0.25}, ""},
		{"cpu quota only", &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(150000)}}, cgroup.Limits{CPUs: 1.5}, ""},
		{"others", &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(512), Cpus: "0-1"}, HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}},
			Unified: map[string]string{"memory.high": "1"}, Pids: &specs.LinuxPids{Limit: i64(5)}},
			cgroup.Limits{Pids: 5}, "cpu.shares, cpu.cpus/cpu.mems (cpuset), hugepageLimits, unified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ignored := LimitsFromResources(tc.r)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("limits mismatch (-want +got):\n%s", diff)
			}
			if s := strings.Join(ignored, ", "); !strings.HasPrefix(s, tc.ignored) || (tc.ignored == "") != (s == "") {
				t.Errorf("ignored = %q; want %q", s, tc.ignored)
			}
		})
	}
}

// TestPlanFromSpecResources: limits make the mode required, a cgroupsPath
// alone best-effort (off as root, with a warning), neither off; what is
// not applied is a warning.
func TestPlanFromSpecResources(t *testing.T) {
	rootful := ociRootful
	for _, tc := range []struct {
		name string
		edit func(s *specs.Spec)
		mode cgroup.Mode
		warn string
	}{
		{"none", nil, cgroup.Off, ""},
		{"empty", func(s *specs.Spec) { s.Linux.Resources = &specs.LinuxResources{} }, cgroup.Off, ""},
		{"limits", func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 30)}}
		}, cgroup.Required, ""},
		{"path", func(s *specs.Spec) { s.Linux.CgroupsPath = "/default/c1" }, cgroup.BestEffort, ""},
		{"path as root", func(s *specs.Spec) {
			s.Linux.CgroupsPath = "/default/c1"
			ociRootful = func() bool { return true }
		}, cgroup.Off, "linux.cgroupsPath /default/c1 is not used"},
		{"shares", func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(2)}}
		}, cgroup.Off, "linux.resources: cpu.shares: not applied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ociRootful = func() bool { return false }
			defer func() { ociRootful = rootful }()
			s, b := ociSpec(t, tc.edit)
			p, warns, err := PlanFromSpec(s, b, "/state/c1")
			if err != nil {
				t.Fatal(err)
			}
			if p.LimitsMode != tc.mode {
				t.Errorf("LimitsMode = %q; want %q", p.LimitsMode, tc.mode)
			}
			var all []string
			for _, w := range warns {
				all = append(all, w.String())
			}
			got := strings.Join(all, "\n")
			if tc.warn != "" && !strings.Contains(got, tc.warn) || tc.warn == "" && strings.Contains(got, "linux.resources") {
				t.Errorf("warnings %q; want one with %q", got, tc.warn)
			}
		})
	}
}

func TestOCICgroupName(t *testing.T) {
	if got := OCICgroupName("web-1_a.b"); got != "warden-oci-web-1_a.b" {
		t.Errorf("OCICgroupName(plain) = %q", got)
	}
	for _, id := range []string{"a+b", strings.Repeat("x", 300)} {
		got := OCICgroupName(id)
		if !strings.HasPrefix(got, "warden-oci-") || len(got) != len("warden-oci-")+24 || strings.ContainsAny(got, "+") {
			t.Errorf("OCICgroupName(%.10q...) = %q; want a digest name", id, got)
		}
	}
	if OCICgroupName("a+b") == OCICgroupName("a+c") {
		t.Errorf("different IDs share a cgroup name")
	}
}
