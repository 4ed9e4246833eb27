package cgroup

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCPUMax(t *testing.T) {
	for _, tc := range []struct {
		cpus float64
		want string
	}{
		{0, "max 100000"},
		{-1, "max 100000"},
		{0.5, "50000 100000"},
		{1, "100000 100000"},
		{2.25, "225000 100000"},
		{0.01, "1000 100000"},
		{0.333333, "33333 100000"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := CPUMax(tc.cpus); got != tc.want {
				t.Errorf("CPUMax(%v) = %q; want %q", tc.cpus, got, tc.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"4096", 4096, false},
		{"64M", 64 << 20, false},
		{"64m", 64 << 20, false},
		{"64MiB", 64 << 20, false},
		{"64MB", 64 << 20, false},
		{"1.5G", 3 << 29, false},
		{"2T", 2 << 40, false},
		{"512k", 512 << 10, false},
		{"max", -1, false},
		{"", 0, true},
		{"-1M", 0, true},
		{"12Q", 0, true},
		{"1e30T", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseSize(%q) error = %v; want error %v", tc.in, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("ParseSize(%q) = %d; want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestFormatSize(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{100, "100 B"}, {64 << 20, "64 MiB"}, {3 << 29, "1.5 GiB"}, {1536, "1.5 KiB"}, {1 << 40, "1 TiB"}} {
		t.Run(tc.want, func(t *testing.T) {
			if got := FormatSize(tc.n); got != tc.want {
				t.Errorf("FormatSize(%d) = %q; want %q", tc.n, got, tc.want)
			}
		})
	}
}

func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		name      string
		l         Limits
		want      []setting
		wantCtrls []string
	}{
		{"none", Limits{Memory: -1, MemorySwap: -1}, nil, nil},
		{"memory implies no swap and oom.group", Limits{Memory: 64 << 20, MemorySwap: -1}, []setting{
			{LimitMemory, "memory", "memory.max", "67108864"},
			{LimitMemory, "memory", "memory.oom.group", "1"},
			{LimitMemorySwap, "memory", "memory.swap.max", "0"},
		}, []string{"memory"}},
		{"explicit swap", Limits{Memory: 1 << 30, MemorySwap: 1 << 29}, []setting{
			{LimitMemory, "memory", "memory.max", "1073741824"},
			{LimitMemory, "memory", "memory.oom.group", "1"},
			{LimitMemorySwap, "memory", "memory.swap.max", "536870912"},
		}, []string{"memory"}},
		{"everything", Limits{Pids: 64, CPUs: 0.5, CPUWeight: 50, IOWeight: 200, IOMax: []string{"8:0 rbps=1048576 wiops=max"}}, []setting{
			{LimitPids, "pids", "pids.max", "64"},
			{LimitCPUs, "cpu", "cpu.max", "50000 100000"},
			{LimitCPUWeight, "cpu", "cpu.weight", "50"},
			{LimitIOWeight, "io", "io.weight", "default 200"},
			{LimitIOMax, "io", "io.max", "8:0 rbps=1048576 wiops=max"},
		}, []string{"cpu", "io", "pids"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.l.settings(), cmp.AllowUnexported(setting{})); diff != "" {
				t.Errorf("settings() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantCtrls, tc.l.Controllers()); diff != "" {
				t.Errorf("Controllers() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    Limits
		want string // substring of the error, "" for none
	}{
		{"ok", Limits{Memory: 1, CPUs: 0.01, CPUWeight: 10000, IOWeight: 1, IOMax: []string{"259:0 wbps=max"}}, ""},
		{"cpus too small", Limits{CPUs: 0.004}, "below the kernel minimum of 0.01"},
		{"cpus NaN", Limits{CPUs: math.NaN()}, "not a number"},
		{"cpu weight", Limits{CPUWeight: 10001}, "cpu_weight 10001"},
		{"io weight", Limits{IOWeight: -3}, "io_weight -3"},
		{"io max", Limits{IOMax: []string{"sda rbps=1"}}, `io_max "sda rbps=1"`},
		{"io max key", Limits{IOMax: []string{"8:0 speed=1"}}, `io_max "8:0 speed=1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.l.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for _, s := range []string{"required", "best-effort", "off"} {
		if m, err := ParseMode(s); err != nil || string(m) != s {
			t.Errorf("ParseMode(%q) = %q, %v", s, m, err)
		}
	}
	if _, err := ParseMode("maybe"); err == nil {
		t.Error("ParseMode(maybe) = nil error; want one")
	}
}

func TestParseProcCgroup(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		wantErr        error
	}{
		{"unified", "0::/user.slice/user-1000.slice/session-3.scope\n", "/user.slice/user-1000.slice/session-3.scope", nil},
		{"hybrid", "9:name=systemd:/\n4:memory:/x\n0::/\n", "/", nil},
		{"deleted", "0::/a/b (deleted)\n", "/a/b", nil},
		{"v1 only", "4:memory:/x\n1:cpu:/\n", "", ErrNoCgroup2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcCgroup([]byte(tc.in))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("parseProcCgroup() error = %v; want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("parseProcCgroup() = %q; want %q", got, tc.want)
			}
		})
	}
}

func TestParseFiles(t *testing.T) {
	got := parseKeyed([]byte("usage_usec 1556445\nuser_usec 114085\nnr_throttled 30\nbad line here\n\n"))
	want := map[string]int64{"usage_usec": 1556445, "user_usec": 114085, "nr_throttled": 30}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseKeyed mismatch (-want +got):\n%s", diff)
	}
	if n, err := parseInt([]byte("max\n")); n != -1 || err != nil {
		t.Errorf("parseInt(max) = %d, %v; want -1, nil", n, err)
	}
	if _, err := parseInt([]byte("x")); err == nil {
		t.Error("parseInt(x) = nil error; want one")
	}
	hs := v1Hierarchies([]byte("#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t1\t1\nmemory\t4\t120\t1\nhugetlb\t0\t1\t1\nio\t0\t1\t0\n"))
	if diff := cmp.Diff(map[string][2]int{"cpuset": {3, 1}, "memory": {4, 1}, "hugetlb": {0, 1}, "io": {0, 0}}, hs); diff != "" {
		t.Errorf("v1Hierarchies mismatch (-want +got):\n%s", diff)
	}
	if got := swapTotal([]byte("MemTotal: 1 kB\nSwapTotal:    2048 kB\n")); got != 2048 {
		t.Errorf("swapTotal = %d; want 2048", got)
	}
}

func TestDecide(t *testing.T) {
	memFail := Failure{Limit: LimitMemory, Controller: "memory", File: "memory.max", Reason: "no memory", Fix: "fix it", Err: ErrControllerUnavailable}
	memFail2 := Failure{Limit: LimitMemory, Controller: "memory", File: "memory.oom.group", Reason: "second", Err: ErrNotDelegated}
	pidsFail := Failure{Limit: LimitPids, Controller: "pids", File: "/x", Reason: "no pids", Fix: "fix it", Err: ErrNotDelegated}
	off := func() map[string]string {
		m := map[string]string{}
		for _, n := range AllLimits {
			m[n] = StateOff
		}
		return m
	}
	with := func(kv ...string) map[string]string {
		m := off()
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name         string
		mode         Mode
		requested    []string
		failures     []Failure
		wantApplied  map[string]string
		wantWarnings []Warning
		wantErr      []Failure
	}{
		{"off ignores failures", Off, []string{LimitMemory}, []Failure{memFail}, off(), nil, nil},
		{"required all applied", Required, []string{LimitMemory, LimitPids}, nil, with(LimitMemory, StateEnforced, LimitPids, StateEnforced), nil, nil},
		{"required refuses", Required, []string{LimitMemory, LimitPids}, []Failure{memFail, memFail2, pidsFail}, nil, nil, []Failure{memFail, pidsFail}},
		{"best effort degrades", BestEffort, []string{LimitMemory, LimitPids, LimitCPUs}, []Failure{memFail, memFail2},
			with(LimitMemory, "degraded: no memory", LimitPids, StateEnforced, LimitCPUs, StateEnforced),
			[]Warning{{Limit: LimitMemory, Reason: "no memory", Fix: "fix it"}}, nil},
		{"nothing requested", Required, nil, nil, off(), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			applied, warnings, err := decide(tc.mode, tc.requested, tc.failures)
			if diff := cmp.Diff(tc.wantApplied, applied); diff != "" {
				t.Errorf("applied mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantWarnings, warnings); diff != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s", diff)
			}
			var ne *NotEnforcedError
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("err = %v; want nil", err)
				}
				return
			}
			if !errors.As(err, &ne) {
				t.Fatalf("err = %v; want *NotEnforcedError", err)
			}
			if diff := cmp.Diff(tc.wantErr, ne.Failures, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
				t.Errorf("failures mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNotEnforcedError(t *testing.T) {
	err := error(&NotEnforcedError{Failures: []Failure{
		{Limit: LimitMemory, File: "memory.max", Reason: "the memory controller is attached to a cgroup v1 hierarchy", Fix: fixUnified, Err: ErrControllerUnavailable},
		{Limit: LimitPids, File: "/sys/fs/cgroup/unified", Reason: "not delegated", Fix: fixScope, Err: ErrNotDelegated},
		{Limit: LimitCPUs, File: "/sys/fs/cgroup/unified", Reason: "not delegated", Fix: fixScope, Err: ErrNotDelegated},
	}})
	want := "enforce cgroup limits: memory limit (memory.max): the memory controller is attached to a cgroup v1 hierarchy; " +
		"pids limit (/sys/fs/cgroup/unified): not delegated; cpus limit (/sys/fs/cgroup/unified): not delegated"
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q\nwant      %q", got, want)
	}
	if !errors.Is(err, ErrNotDelegated) || !errors.Is(err, ErrControllerUnavailable) || errors.Is(err, ErrNoCgroup2) {
		t.Errorf("errors.Is on %v gives the wrong causes", err)
	}
	var ne *NotEnforcedError
	errors.As(err, &ne)
	wantHints := []string{fixUnified, fixScope, "or run with --limits=best-effort to run without the limits (each one is then reported as degraded)"}
	if diff := cmp.Diff(wantHints, ne.Hints()); diff != "" {
		t.Errorf("Hints() mismatch (-want +got):\n%s", diff)
	}
}
