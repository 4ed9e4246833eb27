package cgroup

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestChildLifecycle is the body of TestHostDelegatedLeaf and
// TestVMEvacuation: it runs as an unprivileged user in a cgroup delegated to
// it, with WARDEN_CGROUP_EXPECT "hybrid" (cgroup2 without memory/pids/cpu)
// or "full".
func TestChildLifecycle(t *testing.T) {
	if os.Getenv("WARDEN_CGROUP_CHILD") != "1" {
		t.Skip("runs only as the child of TestHostDelegatedLeaf or TestVMEvacuation, in a cgroup they delegate to it")
	}
	expect := os.Getenv("WARDEN_CGROUP_EXPECT")
	h := realHost()
	loc, err := h.locate()
	if err != nil {
		t.Fatal(err)
	}
	own := loc.Dir
	if !h.delegated(own) {
		t.Fatalf("%s is not delegated to uid %d", own, os.Getuid())
	}
	selfCgroup := func() string { d, _ := os.ReadFile("/proc/self/cgroup"); return string(d) }
	startCgroup := selfCgroup()
	subdirs := func() []string { s, _ := realOps{}.Subdirs(own); return s }

	t.Run("required", func(t *testing.T) {
		leaf, _, err := Setup(Limits{Memory: 64 << 20}, Required, "warden-child")
		if expect == "hybrid" {
			var ne *NotEnforcedError
			if !errors.As(err, &ne) || !errors.Is(err, ErrControllerUnavailable) ||
				!strings.Contains(err.Error(), "hybrid mode") || !strings.Contains(strings.Join(ne.Hints(), "\n"), "systemd.unified_cgroup_hierarchy=1") {
				t.Fatalf("Setup(required, memory) = %v; want the hybrid-mode refusal", err)
			}
			t.Logf("refused as expected: %v", err)
		} else {
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(filepath.Join(leaf.Path(), "memory.max")); strings.TrimSpace(string(got)) != "67108864" {
				t.Errorf("memory.max = %q", got)
			}
			// We were in own, so Setup had to evacuate us to enable memory.
			if want := filepath.Join(loc.Own, evacName); !strings.Contains(selfCgroup(), want) {
				t.Errorf("/proc/self/cgroup = %q; want the evacuation leaf %s", selfCgroup(), want)
			}
			// The no-internal-process rule is real: own cannot take a process now.
			if err := h.ops.WriteFile(filepath.Join(own, "cgroup.procs"), "0"); !errors.Is(err, syscall.EBUSY) {
				t.Errorf("moving into %s with controllers enabled = %v; want EBUSY", own, err)
			}
			mustRemove(t, leaf)
		}
		if got := subdirs(); len(got) != 0 {
			t.Errorf("left %v in %s", got, own)
		}
		if got := selfCgroup(); got != startCgroup {
			t.Errorf("/proc/self/cgroup = %q; want it back at %q", got, startCgroup)
		}
	})

	t.Run("best-effort tracking leaf", func(t *testing.T) {
		leaf, warns, err := Setup(Limits{Memory: 64 << 20, Pids: 64}, BestEffort, "warden-child")
		if err != nil {
			t.Fatal(err)
		}
		defer leaf.Remove()
		var got []string
		for _, w := range warns {
			got = append(got, w.Limit)
		}
		want := []string{LimitMemory, LimitMemorySwap, LimitPids}
		if expect != "hybrid" {
			want = nil
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("warnings mismatch (-want +got):\n%s", diff)
		}
		if leaf.Path() != filepath.Join(own, "warden-child") {
			t.Fatalf("Path() = %q; want a leaf in %s", leaf.Path(), own)
		}
		fd, err := leaf.FD()
		if err != nil {
			t.Fatal(err)
		}
		a := exec.Command("sleep", "60")
		a.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
		if err := a.Start(); err != nil {
			t.Fatalf("start with CLONE_INTO_CGROUP: %v", err)
		}
		b := exec.Command("sleep", "60")
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		if err := leaf.AddPID(b.Process.Pid); err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(leaf.Path(), loc.Mount)
		for _, p := range []*exec.Cmd{a, b} {
			cg, _ := os.ReadFile("/proc/" + strconv.Itoa(p.Process.Pid) + "/cgroup")
			if !strings.Contains(string(cg), "0::"+rel+"\n") {
				t.Errorf("pid %d is in %q; want %s", p.Process.Pid, cg, rel)
			}
		}
		start := time.Now()
		if err := leaf.Kill(); err != nil {
			t.Fatalf("Kill() = %v", err)
		}
		t.Logf("cgroup.kill + populated 0 in %v", time.Since(start).Round(time.Microsecond))
		for _, p := range []*exec.Cmd{a, b} {
			if err := p.Wait(); err == nil || p.ProcessState.String() != "signal: killed" {
				t.Errorf("pid %d ended with %v; want signal: killed", p.Process.Pid, err)
			}
		}
		mustRemove(t, leaf)
		if got := subdirs(); len(got) != 0 {
			t.Errorf("left %v in %s", got, own)
		}
	})

	t.Run("evacuate and restore", func(t *testing.T) {
		leaf := &Leaf{h: h, base: own, fd: -1}
		if err := h.evacuate(leaf); err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(loc.Own, evacName); !strings.Contains(selfCgroup(), "0::"+want+"\n") {
			t.Errorf("after evacuate /proc/self/cgroup = %q; want %s", selfCgroup(), want)
		}
		if err := leaf.Remove(); err != nil {
			t.Fatal(err)
		}
		if got := selfCgroup(); got != startCgroup {
			t.Errorf("after restore /proc/self/cgroup = %q; want %q", got, startCgroup)
		}
		if got := subdirs(); len(got) != 0 {
			t.Errorf("left %v in %s", got, own)
		}
	})
}
