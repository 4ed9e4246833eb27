package image_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/warden-sandbox/warden/sandbox/image"
	"github.com/warden-sandbox/warden/sandbox/image/imagetest"
)

func TestUseBlocksRemove(t *testing.T) {
	s := openStore(t)
	img, err := s.Import(build(t, imagetest.OCI, "two:1", twoCfg, layer1, layer2), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(build(t, imagetest.OCI, "two:1", twoCfg, layer1, layer2), "other"); err != nil {
		t.Fatal(err)
	}
	release, err := s.Use(img)
	if err != nil {
		t.Fatal(err)
	}
	// The lock is not inherited by what the jail runs.
	out, err := exec.Command("sh", "-c", "ls -l /proc/self/fd/").CombinedOutput()
	if err != nil || strings.Contains(string(out), ".use") {
		t.Errorf("a child process has the lock file open (no O_CLOEXEC): %v\n%s", err, out)
	}
	// A name of several goes; the image stays.
	if err := s.Remove("other"); err != nil {
		t.Fatalf("Remove of one of its names while in use: %v", err)
	}
	before := snapshot(t, s)
	err = s.Remove("two:1")
	if kindOf(err) != image.InUse {
		t.Fatalf("Remove of an image in use = %v; want an InUse error", err)
	}
	if want := "image two:1 is in use by a running jail; stop it first (warden ls)"; err.Error() != want {
		t.Errorf("error = %q; want %q", err, want)
	}
	if err := s.Remove(img.ID); kindOf(err) != image.InUse || !strings.HasPrefix(err.Error(), "image two:1 is in use") {
		t.Errorf("Remove by ID of an image in use = %v; want InUse naming two:1", err)
	}
	if diff := cmp.Diff(before, snapshot(t, s)); diff != "" {
		t.Errorf("the refused Remove changed the store (-before +after):\n%s", diff)
	}
	// Two users; the lock goes with the last.
	release2, err := s.Use(img)
	if err != nil {
		t.Fatal(err)
	}
	release()
	release() // twice is harmless
	if err := s.Remove("two:1"); kindOf(err) != image.InUse {
		t.Errorf("Remove with one user left = %v; want InUse", err)
	}
	release2()
	if err := s.Remove("two:1"); err != nil {
		t.Fatalf("Remove after release: %v", err)
	}
	for _, d := range []string{"images", "layers/sha256"} {
		if got := readDirNames(t, filepath.Join(s.Root(), d)); len(got) != 0 {
			t.Errorf("after Remove, %s holds %v", d, got)
		}
	}
	if _, err := s.Use(img); kindOf(err) != image.NotFound {
		t.Errorf("Use of a removed image = %v; want NotFound", err)
	}
	if got := readDirNames(t, filepath.Join(s.Root(), "images")); len(got) != 0 {
		t.Errorf("Use of a removed image left %v in images/", got)
	}
}

// TestUseAcrossProcesses holds the lock in another process, as a running
// jail's warden does.
func TestUseAcrossProcesses(t *testing.T) {
	flock, err := exec.LookPath("flock")
	if err != nil {
		t.Skip("needs flock(1)")
	}
	s := openStore(t)
	img, err := s.Import(build(t, imagetest.Docker, "x:1", image.Config{}, layer1), "")
	if err != nil {
		t.Fatal(err)
	}
	release, err := s.Use(img)
	if err != nil {
		t.Fatal(err)
	}
	useFile := filepath.Join(s.Root(), "images", strings.TrimPrefix(img.ID, "sha256:")+".use")
	if _, err := os.Stat(useFile); err != nil {
		t.Fatal(err)
	}
	// A shared lock of another process is granted alongside ours...
	if out, err := exec.Command(flock, "-s", "-n", useFile, "true").CombinedOutput(); err != nil {
		t.Errorf("flock -s -n while Use holds it: %v %s; want a shared lock", err, out)
	}
	// ...an exclusive one is not.
	if err := exec.Command(flock, "-x", "-n", useFile, "true").Run(); err == nil {
		t.Errorf("flock -x -n while Use holds it succeeded")
	}
	release()
	// Held by another process only.
	cmd := exec.Command(flock, "-s", "-o", useFile, "sleep", "30") // -o: sleep does not inherit it
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() } // flock and its sleep
	defer stop()
	for range 500 {
		if exec.Command(flock, "-x", "-n", useFile, "true").Run() != nil {
			break // the child has it
		}
	}
	if err := s.Remove("x:1"); kindOf(err) != image.InUse {
		t.Errorf("Remove while another process uses the image = %v; want InUse", err)
	}
	stop()
	// The lock goes with the process's files; on a loaded machine (the CI
	// run) that was seen to lag its reaping once: allow it a moment.
	for range 100 {
		if err = s.Remove("x:1"); kindOf(err) != image.InUse {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("Remove after the other process ended: %v", err)
	}
}
