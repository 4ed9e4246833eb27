package jailprog

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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

// TestMountsPivot runs a compiled mount program for real, in a throwaway
// user namespace, and checks the view it builds.
func TestMountsPivot(t *testing.T) {
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
		if p, i, e := runMounts(t, ops, filepath.Join(d, "scratch")); e != 0 {
			t.Fatalf("step %d failed: %v\n%s", i, e, p)
		}
		if _, err := os.Stat("/opt/x"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the optional /opt/x with a missing source: %v, want it skipped", err)
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
		// The new root has exactly the planned mounts: nothing of the old
		// root (the host's, with the fixture) is left, and the skipped
		// optional op mounted nothing.
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		var points []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if f := strings.Fields(line); len(f) > 4 {
				points = append(points, f[4])
			}
		}
		want := []string{"/", "/data", "/data/file", "/dev", "/dev/null", "/proc", "/proc/sys", "/tmp", "/usr", "/work"}
		slices.Sort(points)
		if strings.Join(points, " ") != strings.Join(want, " ") {
			t.Errorf("mount points after pivot_root: %v, want %v", points, want)
		}
	})
}

// TestMountsRefuseSymlinkTarget: a symlink planted in a read-write bind
// never redirects a mount.
func TestMountsRefuseSymlinkTarget(t *testing.T) {
	usernstest.Run(t, func(t *testing.T) {
		d := fixture(t)
		ops := []mount.Op{
			{Kind: mount.Bind, Source: filepath.Join(d, "rw"), Target: "/work"},
			// /work/evil is a symlink to /etc: mounting through it would
			// land the tmpfs on /etc/... of the new root (or the host's).
			{Kind: mount.Tmpfs, Target: "/work/evil/x"},
		}
		p, i, e := runMounts(t, ops, filepath.Join(d, "scratch"))
		if i < 0 || p.Steps[i].Path != "/work/evil/x" || e != unix.ELOOP {
			t.Fatalf("mount through a symlink: step %d, %v; want a failed step for /work/evil/x with ELOOP\n%s", i, e, p)
		}
	})
}

// runMounts compiles ops and runs them here, in the calling (test) process,
// which must be in its own user and mount namespace.
func runMounts(t *testing.T, ops []mount.Op, scratch string) (*Program, int, unix.Errno) {
	t.Helper()
	b := NewBuilder()
	b.Mounts(ops, scratch, Dynamic{}, nil)
	p, err := b.Program()
	if err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	i, e := link(p).run()
	return p, i, e
}

// TestMountsOverlay: a host directory overlaid in the jail takes writes,
// creates and deletes, and the host directory does not change.
func TestMountsOverlay(t *testing.T) {
	usernstest.Run(t, func(t *testing.T) {
		d := fixture(t)
		ops := []mount.Op{
			{Kind: mount.Bind, Source: "/usr", Target: "/usr", ReadOnly: true},
			{Kind: mount.Overlay, Lowers: []string{filepath.Join(d, "ro")}, Target: "/data", Data: "size=1m"},
		}
		if p, i, e := runMounts(t, ops, filepath.Join(d, "scratch")); e != 0 {
			t.Fatalf("step %d failed: %v\n%s", i, e, p)
		}
		if err := os.WriteFile("/data/file", []byte("changed\n"), 0o644); err != nil {
			t.Fatalf("write through the overlay: %v", err)
		}
		if err := os.WriteFile("/data/new", []byte("x"), 0o644); err != nil {
			t.Fatalf("create in the overlay: %v", err)
		}
		if b, _ := os.ReadFile("/data/file"); string(b) != "changed\n" {
			t.Errorf("overlay shows %q after the write", b)
		}
		if err := os.Remove("/data/new"); err != nil {
			t.Errorf("remove in the overlay: %v", err)
		}
		if err := os.Mkdir("/elsewhere", 0o755); !errors.Is(err, unix.EROFS) {
			t.Errorf("mkdir in the root: %v, want EROFS (only the overlay is writable)", err)
		}
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err == nil && strings.Contains(string(b), d) {
			t.Errorf("mountinfo names the host path %s: %s", d, b)
		}
	})
}

// TestMountsRootOverlay: an overlay at "/" is the jail's root (an image or
// --rootfs): it stays writable, mount points missing from it are made in its
// upper layer, and the lower directory does not change.
func TestMountsRootOverlay(t *testing.T) {
	usernstest.Run(t, func(t *testing.T) {
		d := fixture(t)
		root := filepath.Join(d, "rootfs")
		for _, p := range []string{"etc", "usr"} {
			if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=test\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		ops := []mount.Op{
			{Kind: mount.Overlay, Lowers: []string{root}, Target: "/", Data: "size=1m"},
			{Kind: mount.Bind, Source: "/usr", Target: "/usr", ReadOnly: true},
			{Kind: mount.Proc, Target: "/proc"},
			{Kind: mount.Tmpfs, Target: "/tmp", Data: "mode=1777"},
			{Kind: mount.Tmpfs, Target: "/dev", Data: "mode=0755"},
			{Kind: mount.DevBind, Source: "/dev/null", Target: "/dev/null", File: true},
		}
		if p, i, e := runMounts(t, ops, filepath.Join(d, "scratch")); e != 0 {
			t.Fatalf("step %d failed: %v\n%s", i, e, p)
		}
		if b, err := os.ReadFile("/etc/os-release"); err != nil || string(b) != "ID=test\n" {
			t.Errorf("/etc/os-release of the root: %q, %v", b, err)
		}
		if err := os.WriteFile("/etc/os-release", []byte("ID=changed\n"), 0o644); err != nil {
			t.Errorf("write in the root overlay: %v", err)
		}
		if err := os.Mkdir("/newdir", 0o755); err != nil {
			t.Errorf("mkdir in the root overlay: %v", err)
		}
		if _, err := os.Stat("/proc/self"); err != nil {
			t.Errorf("/proc, made in the root's upper layer: %v", err)
		}
		if _, err := os.Stat("/usr/bin/env"); err != nil {
			t.Errorf("the bind of /usr over the root: %v", err)
		}
		if err := os.WriteFile("/usr/x", nil, 0o644); !errors.Is(err, unix.EROFS) {
			t.Errorf("write under the read-only bind: %v, want EROFS", err)
		}
	})
}
