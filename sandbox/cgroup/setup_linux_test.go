package cgroup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var all4 = []string{"cpu", "io", "memory", "pids"}

// delegatedFake builds the common starting point: the root enables all4 for
// /user, /user/del is delegated and holds the caller and one more process.
func delegatedFake(t *testing.T) (*fakeKernel, string) {
	k := newFakeKernel(t, all4...)
	k.enable(k.root, all4...)
	k.mk("user")
	k.enable(filepath.Join(k.root, "user"), all4...)
	del := k.mk("user/del")
	k.place(del, k.self)
	k.place(del, 4242)
	return k, del
}

func TestSetupDelegatedEvacuatesAndRestores(t *testing.T) {
	k, del := delegatedFake(t)
	h := k.host(nil)
	leaf, warns, err := h.setup(Limits{Memory: 64 << 20, Pids: 64, CPUs: 0.5, CPUWeight: 20}, Required, "warden-t")
	if err != nil || len(warns) != 0 {
		t.Fatalf("setup = %v, %v; want no error and no warnings", warns, err)
	}
	if got, want := leaf.Path(), filepath.Join(del, "warden-t"); got != want {
		t.Errorf("Path() = %q; want %q", got, want)
	}
	files := map[string]string{}
	for _, f := range []string{"memory.max", "memory.swap.max", "memory.oom.group", "pids.max", "cpu.max", "cpu.weight"} {
		files[f] = k.get(filepath.Join(leaf.Path(), f))
	}
	wantFiles := map[string]string{"memory.max": "67108864", "memory.swap.max": "0", "memory.oom.group": "1", "pids.max": "64", "cpu.max": "50000 100000", "cpu.weight": "20"}
	if diff := cmp.Diff(wantFiles, files); diff != "" {
		t.Errorf("limit files mismatch (-want +got):\n%s", diff)
	}
	if got := k.procsOf(filepath.Join(del, evacName)); !cmp.Equal(got, []string{"1000001", "4242"}) {
		t.Errorf("evacuation leaf holds %v; want the caller and 4242", got)
	}
	if got := strings.Fields(k.get(filepath.Join(del, "cgroup.subtree_control"))); !cmp.Equal(got, []string{"memory", "pids", "cpu"}) {
		t.Errorf("subtree_control = %v; want cpu memory pids", got)
	}
	wantApplied := map[string]string{LimitMemory: StateEnforced, LimitMemorySwap: StateEnforced, LimitPids: StateEnforced, LimitCPUs: StateEnforced,
		LimitCPUWeight: StateEnforced, LimitIOWeight: StateOff, LimitIOMax: StateOff}
	if diff := cmp.Diff(wantApplied, leaf.Applied()); diff != "" {
		t.Errorf("Applied() mismatch (-want +got):\n%s", diff)
	}
	if err := leaf.Remove(); err != nil {
		t.Fatalf("Remove() = %v", err)
	}
	if got := k.tree(); !cmp.Equal(got, []string{"user", "user/del"}) {
		t.Errorf("after Remove the tree is %v; want only user, user/del", got)
	}
	if got := k.procsOf(del); !cmp.Equal(got, []string{"1000001", "4242"}) {
		t.Errorf("after Remove %s holds %v; want the caller and 4242 back", del, got)
	}
	if got := strings.TrimSpace(k.get(filepath.Join(del, "cgroup.subtree_control"))); got != "" {
		t.Errorf("after Remove subtree_control = %q; want empty", got)
	}
	if err := leaf.Remove(); err != nil {
		t.Errorf("second Remove() = %v; want nil", err)
	}
}

func TestSetupInitScopeParentIsBase(t *testing.T) {
	k := newFakeKernel(t, all4...)
	k.enable(k.root, all4...)
	svc := k.mk("user@1000.service")
	k.place(k.mk("user@1000.service/init.scope"), k.self)
	leaf, _, err := k.host(nil).setup(Limits{Pids: 10}, Required, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := leaf.Path(), filepath.Join(svc, "j1"); got != want {
		t.Errorf("Path() = %q; want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(svc, evacName)); err == nil {
		t.Errorf("%s was created; the caller was already in init.scope", evacName)
	}
	if err := leaf.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := k.tree(); !cmp.Equal(got, []string{"user@1000.service", "user@1000.service/init.scope"}) {
		t.Errorf("after Remove the tree is %v", got)
	}
}

func TestSetupRefusals(t *testing.T) {
	mem := Limits{Memory: 64 << 20}
	for _, tc := range []struct {
		name       string
		prep       func(k *fakeKernel) // starting state beyond delegatedFake
		l          Limits
		wantIs     []error
		wantReason string // in the first failure's reason
		wantFix    string // in the first failure's fix
		wantLimits []string
	}{
		{"hybrid: memory bound to v1", func(k *fakeKernel) {
			k.put(k.root, "cgroup.controllers", "hugetlb\n")
			k.put(filepath.Dir(k.root), "proc-cgroups", "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t4\t1\t1\npids\t8\t1\t1\nhugetlb\t0\t1\t1\n")
		}, Limits{Memory: 1 << 20, Pids: 5}, []error{ErrControllerUnavailable}, "attached to a cgroup v1 hierarchy", "systemd.unified_cgroup_hierarchy=1",
			[]string{LimitMemory, LimitMemorySwap, LimitPids}},
		{"controller compiled out", func(k *fakeKernel) {
			k.put(k.root, "cgroup.controllers", "memory\n")
			k.put(filepath.Dir(k.root), "proc-cgroups", "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t0\t1\t1\n")
		}, Limits{Pids: 5}, []error{ErrControllerUnavailable}, "this kernel has no pids controller", "CONFIG_CGROUP_PIDS", []string{LimitPids}},
		{"not delegated, no user bus", func(k *fakeKernel) {
			k.readOnly[filepath.Join(k.root, "user/del", "cgroup.procs")] = true
		}, mem, []error{ErrNotDelegated, ErrNoUserBus}, "is not delegated to uid 1001", "systemd-run --user --scope -p Delegate=yes", []string{LimitMemory, LimitMemorySwap}},
		{"cpu not delegated", func(k *fakeKernel) {
			k.WriteFile(filepath.Join(k.root, "user", "cgroup.subtree_control"), "-cpu")
		}, Limits{Memory: 1 << 20, CPUs: 1}, []error{ErrControllerUnavailable}, "the cpu controller is not delegated", "Delegate=cpu cpuset io memory pids", []string{LimitCPUs}},
		{"unmovable process", func(k *fakeKernel) {
			k.foreign[4242] = true
		}, mem, []error{syscall.EACCES}, "move process 4242", "systemd-run", []string{LimitMemory, LimitMemorySwap}},
		{"leaf exists", func(k *fakeKernel) {
			k.mk("user/del/warden-t")
		}, mem, []error{syscall.EEXIST}, "a jail of this name is running", "", []string{LimitMemory, LimitMemorySwap}},
		{"limit file not writable", func(k *fakeKernel) {
			k.readOnly[filepath.Join(k.root, "user/del/warden-t/pids.max")] = true
		}, Limits{Pids: 3}, []error{syscall.EACCES}, "pids.max is not writable", "systemd-run", []string{LimitPids}},
		{"swap accounting missing, host has swap", func(k *fakeKernel) {
			k.noSwap = true
			k.put(filepath.Dir(k.root), "meminfo", "SwapTotal: 1024 kB\n")
		}, mem, []error{syscall.ENOENT}, "memory.swap.max does not exist", "swapaccount=1", []string{LimitMemorySwap}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, del := delegatedFake(t)
			tc.prep(k)
			before := k.tree()
			procsBefore := k.procsOf(del)
			leaf, warns, err := k.host(nil).setup(tc.l, Required, "warden-t")
			if tc.wantLimits == nil {
				if err != nil {
					t.Fatalf("setup = %v; want success", err)
				}
				leaf.Remove()
				return
			}
			var ne *NotEnforcedError
			if !errors.As(err, &ne) {
				t.Fatalf("setup = %v, %v, %v; want *NotEnforcedError", leaf, warns, err)
			}
			for _, want := range tc.wantIs {
				if !errors.Is(err, want) {
					t.Errorf("errors.Is(%v, %v) = false", err, want)
				}
			}
			var limits []string
			for _, f := range ne.Failures {
				limits = append(limits, f.Limit)
			}
			if diff := cmp.Diff(tc.wantLimits, limits); diff != "" {
				t.Errorf("failed limits mismatch (-want +got):\n%s", diff)
			}
			if f := ne.Failures[0]; !strings.Contains(f.Reason, tc.wantReason) || !strings.Contains(f.Fix, tc.wantFix) {
				t.Errorf("first failure = %+v; want reason containing %q and fix containing %q", f, tc.wantReason, tc.wantFix)
			}
			if diff := cmp.Diff(before, k.tree()); diff != "" {
				t.Errorf("setup left cgroups behind (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(procsBefore, k.procsOf(del)); diff != "" && !k.foreign[4242] {
				t.Errorf("processes not moved back (-before +after):\n%s", diff)
			}

			// The same host in best-effort mode runs, with one warning per
			// limit that the required run named.
			k2, _ := delegatedFake(t)
			tc.prep(k2)
			leaf, warns, err = k2.host(nil).setup(tc.l, BestEffort, "warden-t")
			if err != nil {
				t.Fatalf("best-effort setup = %v; want success", err)
			}
			defer leaf.Remove()
			var wl []string
			for _, w := range warns {
				wl = append(wl, w.Limit)
				if !strings.HasPrefix(leaf.Applied()[w.Limit], "degraded: ") {
					t.Errorf("Applied()[%s] = %q; want degraded", w.Limit, leaf.Applied()[w.Limit])
				}
			}
			if diff := cmp.Diff(tc.wantLimits, wl); diff != "" {
				t.Errorf("warned limits mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetupBestEffortKeepsWhatWorks(t *testing.T) {
	k, del := delegatedFake(t)
	k.WriteFile(filepath.Join(k.root, "user", "cgroup.subtree_control"), "-cpu")
	leaf, warns, err := k.host(nil).setup(Limits{Memory: 32 << 20, CPUs: 0.5}, BestEffort, "be")
	if err != nil {
		t.Fatal(err)
	}
	defer leaf.Remove()
	if len(warns) != 1 || warns[0].Limit != LimitCPUs || !strings.Contains(warns[0].Fix, "Delegate=cpu") {
		t.Errorf("warnings = %+v; want one for cpus naming the drop-in", warns)
	}
	if got := k.get(filepath.Join(del, "be", "memory.max")); got != "33554432" {
		t.Errorf("memory.max = %q; want 33554432", got)
	}
	if got := leaf.Applied()[LimitMemory]; got != StateEnforced {
		t.Errorf("Applied()[memory] = %q; want enforced", got)
	}
}

func TestSetupOffAndNoCgroup(t *testing.T) {
	k, _ := delegatedFake(t)
	before := k.tree()
	leaf, warns, err := k.host(nil).setup(Limits{Memory: 1 << 20}, Off, "x")
	if err != nil || warns != nil || leaf.Path() != "" {
		t.Fatalf("Off: setup = %q, %v, %v; want no cgroup", leaf.Path(), warns, err)
	}
	for name, state := range leaf.Applied() {
		if state != StateOff {
			t.Errorf("Off: Applied()[%s] = %q", name, state)
		}
	}
	if _, err := leaf.FD(); !errors.Is(err, ErrNoLeaf) {
		t.Errorf("Off: FD() error = %v; want ErrNoLeaf", err)
	}
	if leaf.Kill() != nil || leaf.Remove() != nil || leaf.Ending() != "" {
		t.Error("Off: Kill/Remove/Ending on a leaf without a cgroup must be no-ops")
	}
	if diff := cmp.Diff(before, k.tree()); diff != "" {
		t.Errorf("Off created cgroups (-before +after):\n%s", diff)
	}
}

func TestSetupRetriesEBUSY(t *testing.T) {
	k, _ := delegatedFake(t)
	k.busy = 5
	leaf, _, err := k.host(nil).setup(Limits{Pids: 8}, Required, "b")
	if err != nil {
		t.Fatalf("setup with 5 transient EBUSY = %v; want success", err)
	}
	leaf.Remove()
	if k.busy != 0 {
		t.Errorf("%d injected EBUSY left; the writes did not retry", k.busy)
	}
}

func TestSetupBadInput(t *testing.T) {
	k, _ := delegatedFake(t)
	for _, tc := range []struct {
		name string
		l    Limits
		mode Mode
		jail string
	}{
		{"bad name", Limits{}, Required, "../escape"},
		{"bad mode", Limits{}, "sometimes", "a"},
		{"bad limits", Limits{CPUs: 0.0001}, Required, "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := k.host(nil).setup(tc.l, tc.mode, tc.jail); err == nil {
				t.Error("setup = nil error; want one")
			}
		})
	}
}

func TestSetupAsksSystemdForScope(t *testing.T) {
	k, del := delegatedFake(t)
	k.readOnly[filepath.Join(del, "cgroup.procs")] = true
	run := t.TempDir()
	os.WriteFile(filepath.Join(run, "bus"), nil, 0o600)
	h := k.host(map[string]string{"XDG_RUNTIME_DIR": run})
	var gotAddr, gotUnit string
	var gotPid int
	h.startScope = func(ctx context.Context, addr, unit string, pid int) error {
		gotAddr, gotUnit, gotPid = addr, unit, pid
		scope := k.mk("user/" + unit)
		k.place(scope, pid)
		return nil
	}
	leaf, _, err := h.setup(Limits{Pids: 9}, Required, "warden-s")
	if err != nil {
		t.Fatal(err)
	}
	if gotAddr != "unix:path="+run+"/bus" || gotUnit != "warden-s.scope" || gotPid != k.self {
		t.Errorf("startScope(%q, %q, %d); want the XDG_RUNTIME_DIR bus, warden-s.scope, the caller", gotAddr, gotUnit, gotPid)
	}
	if want := filepath.Join(k.root, "user/warden-s.scope/warden-s"); leaf.Path() != want || leaf.Scope() != "warden-s.scope" {
		t.Errorf("Path() = %q, Scope() = %q; want %q in the scope", leaf.Path(), leaf.Scope(), want)
	}
	if err := leaf.Remove(); err != nil {
		t.Fatal(err)
	}
}

func TestUserBusAddress(t *testing.T) {
	run := t.TempDir()
	os.WriteFile(filepath.Join(run, "bus"), nil, 0o600)
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"session address", map[string]string{"DBUS_SESSION_BUS_ADDRESS": "unix:path=" + run + "/bus,guid=1"}, "unix:path=" + run + "/bus,guid=1", ""},
		{"abstract address", map[string]string{"DBUS_SESSION_BUS_ADDRESS": "unix:abstract=/tmp/dbus-x"}, "unix:abstract=/tmp/dbus-x", ""},
		{"session address missing socket", map[string]string{"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus"}, "", "names /nonexistent/bus"},
		{"runtime dir", map[string]string{"XDG_RUNTIME_DIR": run}, "unix:path=" + run + "/bus", ""},
		{"no user manager", map[string]string{"XDG_RUNTIME_DIR": t.TempDir()}, "", "no systemd user manager runs for uid 4711"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := userBusAddress(func(k string) string { return tc.env[k] }, 4711)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrNoUserBus) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("userBusAddress() error = %v; want ErrNoUserBus containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("userBusAddress() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestScopeRequest(t *testing.T) {
	props := scopeProperties("warden-abc.scope", 1234)
	got := map[string]string{}
	for _, p := range props {
		got[p.Name] = p.Value.String()
	}
	want := map[string]string{
		"Description":         `"warden jail warden-abc"`,
		"PIDs":                "@au [1234]",
		"Delegate":            "true",
		"DefaultDependencies": "false",
		"CollectMode":         `"inactive-or-failed"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scopeProperties mismatch (-want +got):\n%s", diff)
	}
	if got := scopeUnitName("job1"); got != "warden-job1.scope" {
		t.Errorf("scopeUnitName(job1) = %q", got)
	}
	// With no bus listening, the real client fails with a connection error,
	// not a hang.
	dir := t.TempDir()
	err := startScopeDBus(context.Background(), "unix:path="+dir+"/bus", "warden-x.scope", os.Getpid())
	if err == nil || !strings.Contains(err.Error(), "connect to the systemd user manager") {
		t.Errorf("startScopeDBus without a bus = %v; want a connect error", err)
	}
}

func TestProbe(t *testing.T) {
	t.Run("delegated, cpu missing", func(t *testing.T) {
		k, del := delegatedFake(t)
		k.WriteFile(filepath.Join(k.root, "user", "cgroup.subtree_control"), "-cpu")
		r := k.host(nil).probe()
		if !r.Delegated || r.Dir != del || r.Own != "/user/del" {
			t.Errorf("probe = %+v; want delegated %s", r, del)
		}
		if diff := cmp.Diff(map[string]string{"cpu": "not delegated to " + del}, r.Missing); diff != "" {
			t.Errorf("Missing mismatch (-want +got):\n%s", diff)
		}
		if !strings.Contains(r.Fix, "Delegate=cpu") {
			t.Errorf("Fix = %q; want the drop-in", r.Fix)
		}
	})
	t.Run("hybrid, not delegated", func(t *testing.T) {
		k, del := delegatedFake(t)
		k.put(k.root, "cgroup.controllers", "hugetlb\n")
		k.put(filepath.Dir(k.root), "proc-cgroups", "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t2\t1\t1\nmemory\t4\t1\t1\npids\t8\t1\t1\nblkio\t6\t1\t1\n")
		k.readOnly[filepath.Join(del, "cgroup.procs")] = true
		r := k.host(map[string]string{"XDG_RUNTIME_DIR": t.TempDir()}).probe()
		if r.Delegated || r.UserBusErr == "" || len(r.Missing) != 4 {
			t.Errorf("probe = %+v; want not delegated, no user bus, 4 missing", r)
		}
		if !strings.Contains(r.Missing["memory"], "cgroup v1 hierarchy") || r.Fix != fixUnified {
			t.Errorf("Missing[memory] = %q, Fix = %q; want the hybrid explanation", r.Missing["memory"], r.Fix)
		}
	})
}

// TestSetupRequiredCreatesNothingOnKnownFailure: a limit whose controller
// the delegated cgroup lacks fails in Required mode before anything is
// made: no evacuation, no leaf, not even for a moment.
func TestSetupRequiredCreatesNothingOnKnownFailure(t *testing.T) {
	k := newFakeKernel(t, all4...)
	k.enable(k.root, "memory", "pids")
	del := k.mk("del")
	k.place(del, k.self)
	h := k.host(nil)
	mkdirs := 0
	h.ops = countingOps{k, &mkdirs}
	_, _, err := h.setup(Limits{Memory: 1 << 20, CPUs: 0.5}, Required, "c")
	var ne *NotEnforcedError
	if !errors.As(err, &ne) || len(ne.Failures) != 1 || ne.Failures[0].Limit != LimitCPUs {
		t.Fatalf("setup = %v; want a NotEnforcedError for cpus", err)
	}
	if mkdirs != 0 || !slices.Equal(k.tree(), []string{"del"}) || !slices.Equal(k.procsOf(del), []string{"1000001"}) {
		t.Errorf("after the refusal: %d mkdirs, tree %v, %s holds %v; want nothing made or moved", mkdirs, k.tree(), del, k.procsOf(del))
	}
}

type countingOps struct {
	*fakeKernel
	n *int
}

func (c countingOps) Mkdir(path string) error { *c.n++; return c.fakeKernel.Mkdir(path) }
