//go:build linux && integration

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/sandbox/image/imagetest"
)

// TestContainerdWithWarden: containerd (as root, its own daemon on a
// private socket and directories) runs a container with warden-oci as the
// runc binary of its runc v2 shim: output, exit status, and the calls the
// shim makes (create, start, delete) succeed. It needs root: scripts/test.sh
// runs it in its root lane with WARDEN_AS_ROOT=1.
func TestContainerdWithWarden(t *testing.T) {
	if os.Getenv("WARDEN_AS_ROOT") == "" || os.Geteuid() != 0 {
		t.Skip("needs root: scripts/test.sh runs it as root (WARDEN_AS_ROOT=1)")
	}
	bin := os.Getenv("WARDEN_BIN")
	if bin == "" {
		t.Fatal("WARDEN_BIN is not set")
	}
	for _, tool := range []string{"containerd", "ctr", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/setup.sh installs containerd)", tool)
		}
	}
	d := t.TempDir()
	sock := filepath.Join(d, "containerd.sock")
	cfg := "version = 2\nroot = \"" + d + "/root\"\nstate = \"" + d + "/state\"\n[grpc]\n  address = \"" + sock + "\"\n"
	if err := os.WriteFile(filepath.Join(d, "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	daemon := exec.Command("containerd", "--config", filepath.Join(d, "config.toml"))
	logf, _ := os.Create(filepath.Join(d, "containerd.log"))
	daemon.Stdout, daemon.Stderr = logf, logf
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		daemon.Process.Kill()
		daemon.Wait()
		// The snapshotter's overlay mounts go with the daemon's root.
		exec.Command("sh", "-c", "grep -o '"+d+"[^ ]*' /proc/self/mounts | sort -r | xargs -r umount -l").Run()
	})
	ctr := func(args ...string) result {
		t.Helper()
		cmd := exec.Command("ctr", append([]string{"-a", sock}, args...)...)
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
	for i := 0; i < 100 && ctr("version").code != 0; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	tar := filepath.Join(d, "busybox.tar")
	if err := imagetest.Busybox(tar, imagetest.Docker); err != nil {
		t.Fatal(err)
	}
	if r := ctr("image", "import", tar); r.code != 0 {
		t.Fatalf("ctr image import: %d %s", r.code, r.stderr)
	}
	link := filepath.Join(d, "warden-oci")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	r := ctr("run", "--rm", "--runc-binary", link, "docker.io/library/busybox:latest", "w1", "sh", "-c", "echo hello from containerd; id -u; exit 3")
	if r.code != 3 || r.stdout != "hello from containerd\n0\n" {
		t.Errorf("ctr run: %d %q\n%s", r.code, r.stdout, r.stderr)
	}
	if r := ctr("containers", "ls", "-q"); strings.TrimSpace(r.stdout) != "" {
		t.Errorf("containers left: %q", r.stdout)
	}
}
