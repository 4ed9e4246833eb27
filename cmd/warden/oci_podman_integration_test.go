//go:build linux && integration

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/sandbox/image/imagetest"
)

// TestPodmanWithWarden: rootless podman runs its containers with warden-oci
// as the runtime: output, exit status, stdin (-i), exec into a running
// container, stop. podman is installed by scripts/setup.sh; the image is
// built here from busybox-static and loaded from a tarball (no registry).
func TestPodmanWithWarden(t *testing.T) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("podman is not installed (scripts/setup.sh installs it)")
	}
	home := t.TempDir()
	run := filepath.Join(home, "run")
	os.Mkdir(run, 0o700)
	link := filepath.Join(t.TempDir(), "warden-oci")
	if err := os.Symlink(wardenBin(t), link); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "XDG_RUNTIME_DIR=" + run, "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}
	pod := func(stdin string, args ...string) result {
		t.Helper()
		all := append([]string{"--cgroup-manager", "cgroupfs", "--runtime", link}, args...)
		cmd := exec.Command(podman, all...)
		cmd.Env, cmd.Dir = env, home
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		r := result{stdout: out.String(), stderr: errb.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// podman's store holds files of the user's subordinate ids: only
	// podman (in its user namespace) can remove them.
	t.Cleanup(func() {
		cmd := exec.Command(podman, "unshare", "rm", "-rf", filepath.Join(home, ".local"))
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("podman unshare rm: %v %s", err, out)
		}
	})
	tar := filepath.Join(home, "busybox.tar")
	if err := imagetest.Busybox(tar, imagetest.Docker); err != nil {
		t.Fatal(err)
	}
	if r := pod("", "load", "-q", "-i", tar); r.code != 0 {
		t.Fatalf("podman load: %d\n%s", r.code, r.stderr)
	}
	// The host refuses podman's default rlimits (no CAP_SYS_RESOURCE
	// here); runc needs the same flags.
	ul := []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}
	runArgs := func(extra ...string) []string { return append(append([]string{"run", "--rm"}, ul...), extra...) }

	r := pod("", runArgs("busybox:latest", "sh", "-c", "echo hello; id -u; test -e "+imagetest.BusyboxGone+" || echo whiteout-ok; exit 3")...)
	if r.code != 3 || r.stdout != "hello\n0\nwhiteout-ok\n" {
		t.Errorf("podman run: %d %q\n%s", r.code, r.stdout, r.stderr)
	}
	r = pod("", runArgs("-t", "busybox:latest", "sh", "-c", "tty")...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "/dev/pts/0") {
		t.Errorf("podman run -t: %d %q\n%s", r.code, r.stdout, r.stderr)
	}
	r = pod("piped\n", runArgs("-i", "busybox:latest", "cat")...)
	if r.code != 0 || r.stdout != "piped\n" {
		t.Errorf("podman run -i: %d %q\n%s", r.code, r.stdout, r.stderr)
	}
	r = pod("", append(append([]string{"run", "-d", "--name", "w1"}, ul...), "busybox:latest", "sleep", "300")...)
	if r.code != 0 {
		t.Fatalf("podman run -d: %d\n%s", r.code, r.stderr)
	}
	defer pod("", "rm", "-f", "w1")
	r = pod("", "exec", "w1", "sh", "-c", "ps; exit 4")
	if r.code != 4 || !strings.Contains(r.stdout, "sleep 300") {
		t.Errorf("podman exec: %d %q\n%s", r.code, r.stdout, r.stderr)
	}
	r = pod("", "exec", "-t", "w1", "sh", "-c", "tty; exit 7")
	if r.code != 7 || !strings.HasPrefix(r.stdout, "/dev/pts/") {
		t.Errorf("podman exec -t: %d %q\n%s", r.code, r.stdout, r.stderr)
	}
	r = pod("", "stop", "-t", "2", "w1")
	if r.code != 0 {
		t.Errorf("podman stop: %d\n%s", r.code, r.stderr)
	}
	r = pod("", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "w1")
	if got := strings.TrimSpace(r.stdout); got != "exited 143" {
		t.Errorf("after stop: %q (want exited 143: SIGTERM reached sleep)\n%s", got, r.stderr)
	}
}
