package mount_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox/mount"
	"github.com/warden-sandbox/warden/userns/usernstest"
)

// fixture makes a host tree: ro/file, rw/, rw/evil -> /etc (a symlink a
// hostile payload could have planted in a writable directory), scratch/.
func fixture(t *testing.T) string {
	d := usernstest.Dir(t)
	for _, p := range []string{"ro", "rw", "scratch"} {
		if err := os.MkdirAll(filepath.Join(d, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(d, "ro/file"), []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(d, "rw/evil")); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestApplyPivot(t *testing.T) {
	usernstest.Run(t, func(t *testing.T) {
		d := fixture(t)
		ops := []mount.Op{
			{Kind: mount.Bind, Source: "/usr", Target: "/usr", ReadOnly: true},
			{Kind: mount.Symlink, Source: "usr/bin", Target: "/bin"},
			{Kind: mount.Symlink, Source: "usr/lib", Target: "/lib"},
			{Kind: mount.Symlink, Source: "usr/lib64", Target: "/lib64"},
			{Kind: mount.Proc, Target: "/proc"},
			{Kind: mount.Remount, Target: "/proc/sys"},
			{Kind: mount.Tmpfs, Target: "/tmp", Data: "mode=1777"},
			{Kind: mount.Bind, Source: filepath.Join(d, "ro"), Target: "/data", ReadOnly: true},
			{Kind: mount.Bind, Source: filepath.Join(d, "rw"), Target: "/work"},
			{Kind: mount.Tmpfs, Target: "/dev", Data: "mode=0755"},
			{Kind: mount.DevBind, Source: "/dev/null", Target: "/dev/null", File: true},
			{Kind: mount.Hide, Target: "/data/file", File: true, Optional: true},
			{Kind: mount.Bind, Source: "/nonexistent-source", Target: "/opt/x", Optional: true},
		}
		skipped, err := mount.Apply(ops, filepath.Join(d, "scratch"))
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if len(skipped) != 1 || skipped[0].Target != "/opt/x" {
			t.Errorf("skipped = %v, want the optional /opt/x only", skipped)
		}
		if b, err := os.ReadFile("/data/file"); err != nil || len(b) != 0 {
			t.Errorf("hidden /data/file: read %q, %v; want empty", b, err)
		}
		if err := os.WriteFile("/data/new", nil, 0o644); !errors.Is(err, unix.EROFS) {
			t.Errorf("write under read-only bind: %v, want EROFS", err)
		}
		if err := os.WriteFile("/work/new", []byte("x"), 0o644); err != nil {
			t.Errorf("write under read-write bind: %v", err)
		}
		if err := os.WriteFile("/tmp/new", []byte("x"), 0o644); err != nil {
			t.Errorf("write to tmpfs: %v", err)
		}
		if err := os.Mkdir("/newdir", 0o755); !errors.Is(err, unix.EROFS) {
			t.Errorf("mkdir in the root: %v, want EROFS (root is read-only)", err)
		}
		if err := os.WriteFile("/proc/sys/kernel/hostname", []byte("x"), 0o644); err == nil {
			t.Error("write to /proc/sys succeeded; want it read-only")
		}
		if _, err := os.Stat("/bin/sh"); err != nil {
			t.Errorf("stat /bin/sh through the symlink: %v", err)
		}
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("host path %s still visible after pivot_root: %v", d, err)
		}
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), d) && !strings.Contains(string(b), " /data ") {
			t.Errorf("mountinfo mentions the host fixture:\n%s", b)
		}
		if _, err := os.Stat(filepath.Join(d, "rw/new")); err == nil {
			t.Error("file in the host view?")
		}
	})
}

func TestApplyRefusesSymlinkTarget(t *testing.T) {
	usernstest.Run(t, func(t *testing.T) {
		d := fixture(t)
		ops := []mount.Op{
			{Kind: mount.Bind, Source: filepath.Join(d, "rw"), Target: "/work"},
			// /work/evil is a symlink to /etc: mounting through it would
			// land the tmpfs on /etc/... of the new root (or the host's).
			{Kind: mount.Tmpfs, Target: "/work/evil/x"},
		}
		_, err := mount.Apply(ops, filepath.Join(d, "scratch"))
		var me *mount.Error
		if !errors.As(err, &me) || me.Op.Target != "/work/evil/x" || !errors.Is(err, unix.ELOOP) {
			t.Fatalf("Apply through a symlink: %v, want a *mount.Error for /work/evil/x with ELOOP", err)
		}
	})
}
