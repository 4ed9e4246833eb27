package cgroup

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestStatsAndEnding(t *testing.T) {
	for _, tc := range []struct {
		name       string
		files      map[string]string
		want       Stats
		wantEnding string
	}{
		{"quiet run", map[string]string{
			"memory.peak": "1048576\n", "memory.current": "4096\n",
			"cpu.stat":  "usage_usec 1556445\nuser_usec 114085\nsystem_usec 1442360\nnr_periods 31\nnr_throttled 30\nthrottled_usec 4349993\n",
			"pids.peak": "3\n", "io.stat": "8:0 rbytes=4096 wbytes=0 rios=1 wios=0\n",
		}, Stats{MemoryPeak: 1 << 20, MemoryCurrent: 4096, CPUUsageUsec: 1556445, CPUUserUsec: 114085, CPUSystemUsec: 1442360,
			ThrottledUsec: 4349993, NrThrottled: 30, PidsPeak: 3, IOStat: "8:0 rbytes=4096 wbytes=0 rios=1 wios=0"}, ""},
		{"oom", map[string]string{
			"memory.events": "low 0\nhigh 0\nmax 310\noom 2\noom_kill 1\noom_group_kill 1\n", "memory.peak": "67112960\n",
		}, Stats{MemoryPeak: 67112960, OOM: 2, OOMKill: 2}, "oom"},
		{"fork bomb", map[string]string{"pids.events": "max 221\n", "pids.peak": "64\n"}, Stats{PidsPeak: 64, PidsMaxEvents: 221}, "pids-limit"},
		{"oom wins over pids", map[string]string{"pids.events": "max 1\n", "memory.events": "oom_kill 1\n"}, Stats{OOMKill: 1, PidsMaxEvents: 1}, "oom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newFakeKernel(t, "memory", "pids")
			k.enable(k.root, "memory", "pids")
			dir := k.mk("j")
			for f, v := range tc.files {
				k.put(dir, f, v)
			}
			leaf := &Leaf{h: k.host(nil), dir: dir, fd: -1}
			got, err := leaf.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
			}
			if got := leaf.Ending(); got != tc.wantEnding {
				t.Errorf("Ending() = %q; want %q", got, tc.wantEnding)
			}
		})
	}
}

func TestStatsWithoutLeaf(t *testing.T) {
	if _, err := (&Leaf{fd: -1}).Stats(); !errors.Is(err, ErrNoLeaf) {
		t.Errorf("Stats() without a cgroup = %v; want ErrNoLeaf", err)
	}
}

// TestKillFallbackWithoutCgroupKill checks the path for kernels before 5.14:
// a real child process listed in a fake leaf without cgroup.kill is killed by
// pid, and the wait ends when the fake sees it gone.
func TestKillFallbackWithoutCgroupKill(t *testing.T) {
	k := newFakeKernel(t, "pids")
	k.noKill = true
	dir := k.mk("j")
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("needs the sleep command: %v", err)
	}
	k.place(dir, cmd.Process.Pid)
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		// The kernel drops a reaped process from cgroup.procs; so does the fake.
		k.put(dir, "cgroup.procs", "")
		done <- err
	}()
	leaf := &Leaf{h: k.host(nil), dir: dir, fd: -1}
	start := time.Now()
	if err := leaf.Kill(); err != nil {
		t.Fatalf("Kill() = %v", err)
	}
	select {
	case err := <-done:
		if err == nil || cmd.ProcessState.String() != "signal: killed" {
			t.Errorf("child ended with %v; want signal: killed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("child still running after Kill()")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Kill() took %v", d)
	}
	if err := leaf.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := k.tree(); len(got) != 0 {
		t.Errorf("after Remove the tree is %v; want empty", got)
	}
}

func TestKillTimesOutOnStuckCgroup(t *testing.T) {
	k := newFakeKernel(t, "pids")
	dir := k.mk("j")
	// cgroup.kill here is a plain file that kills nothing; the process stays.
	k.place(dir, 999999)
	k.put(dir, "cgroup.kill", "")
	leaf := &Leaf{h: &host{ops: stuckOps{k}}, dir: dir, fd: -1}
	start := time.Now()
	if err := leaf.waitEmpty(200 * time.Millisecond); err == nil {
		t.Fatal("waitEmpty on a populated cgroup = nil; want a timeout error")
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("waitEmpty took %v; want about 200ms", d)
	}
	if got := k.procsOf(dir); !cmp.Equal(got, []string{strconv.Itoa(999999)}) {
		t.Errorf("procs = %v", got)
	}
}

// stuckOps is a fake kernel whose cgroup.kill does nothing.
type stuckOps struct{ *fakeKernel }

func (s stuckOps) WriteFile(path, value string) error {
	if filepath.Base(path) == "cgroup.kill" {
		return nil
	}
	return s.fakeKernel.WriteFile(path, value)
}
