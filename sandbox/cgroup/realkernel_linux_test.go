package cgroup

// Tests against the running kernel. Those that need real controllers
// (memory, pids, cpu) skip with the reason on hosts that lack them (like a
// hybrid-cgroup host) and run in the VM lane (scripts/vm-test.sh), where
// WARDEN_VMLANE=1 turns such a skip into a failure.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	switch os.Getenv("WARDEN_CGROUP_HELPER") {
	case "":
		os.Exit(m.Run())
	case "memhog":
		memhog()
	case "spin":
		d, _ := time.ParseDuration(os.Getenv("WARDEN_CGROUP_SPIN"))
		for end := time.Now().Add(d); time.Now().Before(end); {
		}
		os.Exit(0)
	}
	os.Exit(3)
}

// memhog touches memory 1 MiB at a time, up to 1 GiB, and keeps it.
func memhog() {
	var keep [][]byte
	for i := 1; i <= 1024; i++ {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = byte(j)
		}
		keep = append(keep, b)
		if i%16 == 0 {
			fmt.Printf("%d MiB\n", i)
		}
	}
	os.Exit(4) // not reached under a memory limit
}

func inVMLane() bool { return os.Getenv("WARDEN_VMLANE") == "1" }

// needControllers skips (fails in the VM lane) unless the caller has a
// delegated cgroup with the controllers.
func needControllers(t *testing.T, ctrls ...string) {
	t.Helper()
	r := realHost().probe()
	var missing, reasons []string
	for _, c := range ctrls {
		if !r.Delegated || !contains(r.Controllers, c) {
			missing = append(missing, c)
			if why := r.Missing[c]; why != "" {
				reasons = append(reasons, why)
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	if len(reasons) == 0 {
		reasons = append(reasons, r.Problem)
	}
	why := fmt.Sprintf("needs a delegated cgroup2 subtree with the %s controller(s) (mode %s, delegated %v, controllers %q): %s",
		strings.Join(missing, ", "), r.Mode, r.Delegated, r.Controllers, strings.Join(reasons, "; "))
	if inVMLane() {
		t.Fatal(why)
	}
	t.Skip(why + "; runs in scripts/vm-test.sh")
}

// startIn starts the test binary as helper mode in the leaf via
// CLONE_INTO_CGROUP.
func startIn(t *testing.T, leaf *Leaf, cmd *exec.Cmd) {
	t.Helper()
	fd, err := leaf.FD()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v in %s: %v", cmd.Args, leaf.Path(), err)
	}
}

func helper(mode string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), append(env, "WARDEN_CGROUP_HELPER="+mode)...)
	return cmd
}

func mustRemove(t *testing.T, leaf *Leaf) {
	t.Helper()
	path := leaf.Path()
	start := time.Now()
	if err := leaf.Remove(); err != nil {
		t.Fatalf("Remove() = %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists after Remove (stat: %v)", path, err)
	}
	t.Logf("Remove took %v", time.Since(start).Round(time.Microsecond))
}

func TestVMMemoryOOM(t *testing.T) {
	needControllers(t, "memory")
	const limit = 64 << 20
	leaf, warns, err := Setup(Limits{Memory: limit}, Required, "warden-test-oom")
	if err != nil || len(warns) > 0 {
		t.Fatalf("Setup = %v, %v", warns, err)
	}
	defer leaf.Remove()
	cmd := helper("memhog")
	cmd.Stdout = io.Discard
	startIn(t, leaf, cmd)
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("memhog ended with %v; want killed by SIGKILL", err)
	}
	st, err := leaf.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("memory.peak %d (limit %d, over by %d), oom %d, oom_kill %d", st.MemoryPeak, limit, st.MemoryPeak-limit, st.OOM, st.OOMKill)
	if got := leaf.Ending(); got != "oom" {
		t.Errorf("Ending() = %q; want oom", got)
	}
	if st.OOMKill < 1 {
		t.Errorf("oom_kill = %d; want >= 1", st.OOMKill)
	}
	// The OOM victim may charge a page while dying: allow one.
	if st.MemoryPeak > limit+4096 || st.MemoryPeak < limit/2 {
		t.Errorf("memory.peak = %d; want in (%d, %d]", st.MemoryPeak, limit/2, limit+4096)
	}
	if st.CPUUsageUsec == 0 {
		t.Error("cpu.stat usage_usec = 0; want the hog's CPU time")
	}
	mustRemove(t, leaf)
}

func TestVMPidsForkBomb(t *testing.T) {
	needControllers(t, "pids")
	leaf, _, err := Setup(Limits{Pids: 64}, Required, "warden-test-pids")
	if err != nil {
		t.Fatal(err)
	}
	defer leaf.Remove()
	cmd := exec.Command("/bin/sh", "-c", "b() { b | b & }; b; wait")
	startIn(t, leaf, cmd)
	time.Sleep(2 * time.Second)
	cur, _ := os.ReadFile(filepath.Join(leaf.Path(), "pids.current"))
	st, err := leaf.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after 2s: pids.current %s, pids.peak %d, pids.events max %d", strings.TrimSpace(string(cur)), st.PidsPeak, st.PidsMaxEvents)
	if n, _ := strconv.Atoi(strings.TrimSpace(string(cur))); n > 64 || n < 2 {
		t.Errorf("pids.current = %d; want 2..64", n)
	}
	if st.PidsPeak > 64 || st.PidsMaxEvents == 0 {
		t.Errorf("pids.peak = %d, pids.events max = %d; want <= 64 and > 0", st.PidsPeak, st.PidsMaxEvents)
	}
	if got := leaf.Ending(); got != "pids-limit" {
		t.Errorf("Ending() = %q; want pids-limit", got)
	}
	start := time.Now()
	if err := leaf.Kill(); err != nil {
		t.Fatalf("Kill() = %v", err)
	}
	t.Logf("cgroup.kill of the fork bomb emptied the cgroup in %v", time.Since(start).Round(time.Microsecond))
	cmd.Wait()
	mustRemove(t, leaf)
}

func TestVMCPUThrottle(t *testing.T) {
	needControllers(t, "cpu")
	leaf, _, err := Setup(Limits{CPUs: 0.5}, Required, "warden-test-cpu")
	if err != nil {
		t.Fatal(err)
	}
	defer leaf.Remove()
	if got, _ := os.ReadFile(filepath.Join(leaf.Path(), "cpu.max")); strings.TrimSpace(string(got)) != "50000 100000" {
		t.Errorf("cpu.max = %q; want 50000 100000", got)
	}
	cmd := helper("spin", "WARDEN_CGROUP_SPIN=3s", "GOMAXPROCS=1")
	start := time.Now()
	startIn(t, leaf, cmd)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("spin: %v", err)
	}
	wall := time.Since(start)
	st, err := leaf.Stats()
	if err != nil {
		t.Fatal(err)
	}
	share := float64(st.CPUUsageUsec) / float64(wall.Microseconds())
	t.Logf("spin: wall %v, usage %d us (user %d, system %d) = %.2f CPUs, throttled %d us in %d periods",
		wall.Round(time.Millisecond), st.CPUUsageUsec, st.CPUUserUsec, st.CPUSystemUsec, share, st.ThrottledUsec, st.NrThrottled)
	if share < 0.35 || share > 0.6 {
		t.Errorf("CPU share = %.2f; want about 0.5", share)
	}
	if st.ThrottledUsec == 0 || st.NrThrottled == 0 {
		t.Errorf("throttled_usec = %d, nr_throttled = %d; want > 0", st.ThrottledUsec, st.NrThrottled)
	}
	mustRemove(t, leaf)
}

// TestVMRequiredUndelegated builds a delegated cgroup whose parent enables
// memory and pids but not cpu, and checks that a cpus limit is refused with
// the controller named, and that best-effort keeps memory and degrades cpus.
func TestVMRequiredUndelegated(t *testing.T) {
	needControllers(t, "memory", "pids", "cpu")
	h := realHost()
	r := h.probe()
	if err := h.writeRetry(filepath.Join(r.Dir, "cgroup.subtree_control"), "+memory +pids +cpu"); err != nil {
		t.Fatal(err)
	}
	mid := filepath.Join(r.Dir, "warden-test-mid")
	if err := os.Mkdir(mid, 0o755); err != nil {
		t.Fatal(err)
	}
	defer unix.Rmdir(mid)
	if err := h.ops.WriteFile(filepath.Join(mid, "cgroup.subtree_control"), "+memory +pids"); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(mid, "base")
	if err := os.Mkdir(b, 0o755); err != nil {
		t.Fatal(err)
	}
	defer unix.Rmdir(b)
	// Pretend the caller sits in b/warden-supervisor, so b is the base.
	own := filepath.Join(t.TempDir(), "cgroup")
	rel := strings.TrimPrefix(filepath.Join(b, evacName), r.Mount)
	os.WriteFile(own, []byte("0::"+rel+"\n"), 0o644)
	h.procSelfCgroup = own

	_, _, err := h.setup(Limits{Memory: 32 << 20, CPUs: 0.5}, Required, "warden-test-undeleg")
	var ne *NotEnforcedError
	if !errors.As(err, &ne) || !errors.Is(err, ErrControllerUnavailable) || len(ne.Failures) != 1 || ne.Failures[0].Controller != "cpu" {
		t.Fatalf("Setup(required, cpus) = %v; want a NotEnforcedError for the cpu controller only", err)
	}
	t.Logf("required refused: %v; hints %q", err, ne.Hints())
	if subs, _ := (realOps{}).Subdirs(b); len(subs) != 0 {
		t.Errorf("refused Setup left %v in %s", subs, b)
	}
	leaf, warns, err := h.setup(Limits{Memory: 32 << 20, CPUs: 0.5}, BestEffort, "warden-test-undeleg")
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || warns[0].Limit != LimitCPUs || leaf.Applied()[LimitMemory] != StateEnforced {
		t.Errorf("best-effort: warnings %+v, applied %v; want cpus degraded, memory enforced", warns, leaf.Applied())
	}
	if got, _ := os.ReadFile(filepath.Join(leaf.Path(), "memory.max")); strings.TrimSpace(string(got)) != "33554432" {
		t.Errorf("memory.max = %q", got)
	}
	mustRemove(t, leaf)
}

// TestHostDelegatedLeaf creates a subtree of the host's cgroup2 hierarchy,
// delegates it to the unprivileged user wardentest the way systemd does, and
// runs TestChildLifecycle as that user inside it. On a hybrid host (only
// hugetlb on cgroup2) that checks the refusal in required mode, the tracking
// leaf in best-effort mode, CLONE_INTO_CGROUP, AddPID, cgroup.kill, the
// populated wait, evacuation and rmdir against the real kernel.
func TestHostDelegatedLeaf(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to create and delegate a test subtree of the cgroup2 hierarchy")
	}
	loc, err := realHost().locate()
	if err != nil {
		t.Skipf("needs a cgroup2 mount: %v", err)
	}
	u, err := user.Lookup("wardentest")
	if err != nil {
		t.Skipf("needs the unprivileged user wardentest: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	expect := "full"
	if ctrls, _ := realHost().controllers(loc.Mount, "cgroup.controllers"); !contains(ctrls, "memory") {
		expect = "hybrid"
	}
	dir := filepath.Join(loc.Mount, "warden-test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeTree(t, dir) })
	for _, p := range []string{"", "cgroup.procs", "cgroup.threads", "cgroup.subtree_control"} {
		if err := os.Chown(filepath.Join(dir, p), uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	runChild(t, dir, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, expect)
}

// TestVMEvacuation runs TestChildLifecycle in a fresh delegated child of the
// VM lane's cgroup, with real controllers: evacuation is needed there.
func TestVMEvacuation(t *testing.T) {
	needControllers(t, "memory", "pids", "cpu")
	h := realHost()
	r := h.probe()
	if err := h.writeRetry(filepath.Join(r.Dir, "cgroup.subtree_control"), "+memory +pids +cpu"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(r.Dir, "warden-test-evac")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeTree(t, dir) })
	runChild(t, dir, nil, "full")
}

func runChild(t *testing.T, dir string, cred *syscall.Credential, expect string) {
	t.Helper()
	// t.TempDir() is private to us; the child may run as another user.
	tmp, err := os.MkdirTemp("", "warden-cgroup-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	os.Chmod(tmp, 0o755)
	bin := filepath.Join(tmp, "cgroup.test")
	if err := copyFile(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	cmd := exec.Command(bin, "-test.run=^TestChildLifecycle$", "-test.v", "-test.count=1")
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = append(os.Environ(), "WARDEN_CGROUP_CHILD=1", "WARDEN_CGROUP_EXPECT="+expect)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, UseCgroupFD: true, CgroupFD: fd}
	out, err := cmd.CombinedOutput()
	t.Logf("child (expect %s) output:\n%s", expect, out)
	if err != nil || !strings.Contains(string(out), "--- PASS: TestChildLifecycle") {
		t.Fatalf("child: %v", err)
	}
	if subs, _ := (realOps{}).Subdirs(dir); len(subs) != 0 {
		t.Errorf("child left cgroups %v in %s", subs, dir)
	}
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o755)
}

// removeTree kills and removes a test cgroup subtree, deepest first.
func removeTree(t *testing.T, dir string) {
	subs, _ := realOps{}.Subdirs(dir)
	for _, s := range subs {
		removeTree(t, filepath.Join(dir, s))
	}
	l := &Leaf{h: realHost(), dir: dir, fd: -1}
	if err := l.Kill(); err != nil {
		t.Errorf("clean up %s: %v", dir, err)
	}
	if err := l.rmdir(dir); err != nil {
		t.Errorf("clean up %s: %v", dir, err)
	}
}

// TestSetupUndelegatedHost runs Setup for real where the caller has no
// delegated cgroup (an unprivileged user on a hybrid or plain host): required
// must refuse with a NotEnforcedError and best-effort must run without a
// cgroup, with one warning per limit.
func TestSetupUndelegatedHost(t *testing.T) {
	r := realHost().probe()
	if r.Delegated {
		t.Skipf("needs a caller without a delegated cgroup (%s is delegated)", r.Dir)
	}
	if r.UserBus != "" {
		t.Skipf("needs a host without a systemd user bus (found %s): Setup would ask it for a scope", r.UserBus)
	}
	l := Limits{Memory: 64 << 20, Pids: 64}
	_, _, err := Setup(l, Required, "")
	var ne *NotEnforcedError
	if !errors.As(err, &ne) || len(ne.Hints()) < 2 {
		t.Fatalf("Setup(required) = %v; want a NotEnforcedError with hints", err)
	}
	t.Logf("required: %v", err)
	leaf, warns, err := Setup(l, BestEffort, "")
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Path() != "" || len(warns) != 3 {
		t.Errorf("best-effort: Path() = %q, %d warnings %+v; want no cgroup and 3 warnings", leaf.Path(), len(warns), warns)
	}
	for _, w := range warns {
		if got := leaf.Applied()[w.Limit]; !strings.HasPrefix(got, "degraded: ") {
			t.Errorf("Applied()[%s] = %q; want degraded", w.Limit, got)
		}
	}
}
