//go:build linux && integration

package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/sandbox"
	"github.com/warden-sandbox/warden/sandbox/image"
	"github.com/warden-sandbox/warden/sandbox/image/imagetest"
	"github.com/warden-sandbox/warden/sandbox/writeset"
)

// overlayReport runs warden with --report and returns the report.
func overlayReport(t *testing.T, e *sandboxEnv, args ...string) (result, sandbox.Report) {
	t.Helper()
	rp := filepath.Join(t.TempDir(), "report.json")
	r := e.run(t, nil, append([]string{"run", "--report", rp}, args...)...)
	var rep sandbox.Report
	b, err := os.ReadFile(rp)
	if err != nil {
		t.Fatalf("report: %v\n%s", err, r.stderr)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	return r, rep
}

// paths lists the entries' paths, sorted, space-separated.
func paths(es []writeset.Entry) string {
	var p []string
	for _, x := range es {
		p = append(p, x.Path)
	}
	sort.Strings(p)
	return strings.Join(p, " ")
}

// typedPaths lists the entries as PATH:TYPE, sorted.
func typedPaths(es []writeset.Entry) string {
	var p []string
	for _, x := range es {
		p = append(p, x.Path+":"+x.Type)
	}
	sort.Strings(p)
	return strings.Join(p, " ")
}

// tree describes a directory tree: each path, its mode and content.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s %v", rel, fi.Mode())
		if fi.Mode().IsRegular() {
			c, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %x", sha256.Sum256(c))
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestOverlayWriteSet: a script creates, modifies and deletes files in an
// overlaid project: the host directory does not change, and the report
// lists exactly what changed; an open for writing that changes nothing and
// a chmod to the same mode are not changes.
func TestOverlayWriteSet(t *testing.T) {
	e := newEnv(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(e.cwd, "keep.txt"), []byte("same\n"), 0o644))
	must(os.WriteFile(filepath.Join(e.cwd, "edit.txt"), []byte("old\n"), 0o644))
	must(os.WriteFile(filepath.Join(e.cwd, "gone.txt"), []byte("bye\n"), 0o644))
	must(os.MkdirAll(filepath.Join(e.cwd, "olddir/sub"), 0o755))
	must(os.WriteFile(filepath.Join(e.cwd, "olddir/sub/f"), []byte("12345"), 0o644))
	before := tree(t, e.cwd)
	script := `set -e
echo new > new.txt
mkdir -p out/deep && echo x > out/deep/y
echo changed > edit.txt
rm gone.txt
rm -r olddir
cat keep.txt >> keep.txt.tmp && rm keep.txt.tmp
: >> keep.txt
chmod 644 keep.txt
cat edit.txt`
	r, rep := overlayReport(t, e, "--overlay", ".", "--diff", "--", "sh", "-c", script)
	if r.code != 0 || r.stdout != "changed\n" {
		t.Fatalf("run: %d %q\n%s", r.code, r.stdout, r.stderr)
	}
	if after := tree(t, e.cwd); after != before {
		t.Errorf("the host directory changed:\nbefore %s\nafter  %s", before, after)
	}
	if len(rep.Overlays) != 1 {
		t.Fatalf("report overlays: %+v", rep.Overlays)
	}
	ov := rep.Overlays[0]
	got := map[string]string{"created": typedPaths(ov.Created), "modified": typedPaths(ov.Modified), "deleted": typedPaths(ov.Deleted)}
	want := map[string]string{
		"created":  "/new.txt:file /out/deep/y:file /out/deep:dir /out:dir",
		"modified": "/edit.txt:file",
		"deleted":  "/gone.txt:file /olddir:dir",
	}
	for k := range want {
		if got[k] != want[k] {
			t.Errorf("%s: %q, want %q", k, got[k], want[k])
		}
	}
	if ov.Error != "" || ov.Target != e.cwd {
		t.Errorf("overlay %q error %q", ov.Target, ov.Error)
	}
	for _, line := range []string{"new.txt", "edit.txt", "gone.txt"} {
		if !strings.Contains(r.stderr, line) {
			t.Errorf("--diff does not list %s:\n%s", line, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "keep.txt") {
		t.Errorf("--diff lists keep.txt, which only got copied up:\n%s", r.stderr)
	}
}

// TestOverlayKeepReapplied: the upper layer saved with --overlay-keep holds
// the run's changes and its whiteouts, and is itself a directory a later
// jail can overlay.
func TestOverlayKeepReapplied(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(filepath.Join(e.cwd, "a"), []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.cwd, "b"), []byte("b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(t.TempDir(), "changes")
	r := e.run(t, nil, "run", "--overlay", ".", "--overlay-keep", keep, "--", "sh", "-c", "echo A > a; rm b; echo c > c")
	if r.code != 0 {
		t.Fatalf("run: %d\n%s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(keep, "a")); err != nil || string(b) != "A\n" {
		t.Errorf("kept a: %q %v", b, err)
	}
	if fi, err := os.Lstat(filepath.Join(keep, "b")); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("kept b is not a whiteout: %v %v", fi, err)
	}
	r = e.run(t, nil, "run", "--overlay", keep+":/k", "--", "sh", "-c", "cat /k/a /k/c")
	if r.code != 0 || r.stdout != "A\nc\n" {
		t.Errorf("kept layer overlaid: %d %q\n%s", r.code, r.stdout, r.stderr)
	}
	// A second run refuses a non-empty keep directory before it starts.
	r = e.run(t, nil, "run", "--overlay", ".", "--overlay-keep", keep, "--", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "not empty") {
		t.Errorf("non-empty keep dir: %d\n%s", r.code, r.stderr)
	}
}

// TestRootFS: --rootfs DIR is the jail's root: writable (copy-on-write),
// the directory unchanged, nothing of the host's file system visible.
func TestRootFS(t *testing.T) {
	e := newEnv(t)
	root := filepath.Join(t.TempDir(), "root")
	for _, d := range []string{"bin", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("needs busybox-static (scripts/setup.sh installs it): %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(root, "bin/sh")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/motd"), []byte("hello from the root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := tree(t, root)
	r, rep := overlayReport(t, e, "--rootfs", root, "--", "/bin/sh", "-c",
		"busybox cat /etc/motd; echo x > /etc/new; busybox rm /etc/motd; busybox ls /; busybox ls /usr 2>&1; busybox id -u")
	if r.code != 0 {
		t.Fatalf("run: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.HasPrefix(r.stdout, "hello from the root\n") {
		t.Errorf("stdout %q", r.stdout)
	}
	if !strings.Contains(r.stdout, "No such file") {
		t.Errorf("the host's /usr is visible in a --rootfs jail: %q", r.stdout)
	}
	if !strings.HasSuffix(r.stdout, "0\n") {
		t.Errorf("the command does not run as the root's root: %q", r.stdout)
	}
	if after := tree(t, root); after != before {
		t.Errorf("--rootfs directory changed:\n%s\n%s", before, after)
	}
	if len(rep.Overlays) != 1 {
		t.Fatalf("overlays %+v", rep.Overlays)
	}
	ov := rep.Overlays[0]
	if c := paths(ov.Created); c != "/etc/new" {
		t.Errorf("created %q, want /etc/new only (mount points are warden's)", c)
	}
	if d := paths(ov.Deleted); d != "/etc/motd" {
		t.Errorf("deleted %q", d)
	}
}

// TestImageRun: an image of two layers (a whiteout in the second), as a
// docker-save tarball and as an OCI layout, runs with its own root and
// config; the second start does no unpacking; the store is not visible in
// the jail, even with $HOME shown read-write.
func TestImageRun(t *testing.T) {
	for _, format := range []string{imagetest.Docker, imagetest.OCI} {
		t.Run(format, func(t *testing.T) {
			e := newEnv(t)
			e.env = append(e.env, "XDG_DATA_HOME="+filepath.Join(e.home, ".local/share"))
			ref := filepath.Join(t.TempDir(), "busybox")
			if format == imagetest.Docker {
				ref += ".tar"
			}
			if err := imagetest.Busybox(ref, format); err != nil {
				t.Fatal(err)
			}
			script := "id -u; pwd; cat /etc/hostname; test -e " + imagetest.BusyboxGone + " && echo GONE-VISIBLE; ls /usr 2>&1 | head -1; echo $HOME"
			r, rep := overlayReport(t, e, "--image", ref, "--", "sh", "-c", script+"; echo hi > /newfile")
			if r.code != 0 {
				t.Fatalf("run: %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			if len(lines) != 5 || lines[0] != "0" || lines[1] != "/" || strings.Contains(r.stdout, "GONE-VISIBLE") ||
				!strings.Contains(lines[3], "No such file") || lines[4] != "/root" {
				t.Errorf("in the image: %q", r.stdout)
			}
			if len(rep.Overlays) != 1 || paths(rep.Overlays[0].Created) != "/newfile" || !strings.HasPrefix(rep.Overlays[0].Source, "image busybox:latest sha256:") {
				t.Errorf("report overlays: %+v", rep.Overlays)
			}
			// By name, from the store: the image's own command (sh) reads
			// stdin.
			r = e.run(t, []byte("echo from-stdin\n"), "run", "--image", "busybox:latest")
			if r.code != 0 || r.stdout != "from-stdin\n" {
				t.Errorf("image's default command: %d %q\n%s", r.code, r.stdout, r.stderr)
			}
			// The store, under a $HOME shown read-write, is hidden.
			store := filepath.Join(e.home, ".local/share/warden")
			r = e.run(t, nil, "run", "--rw", e.home, "--", "sh", "-c", "ls -A "+store+" | wc -l; touch "+store+"/x")
			if r.code == 0 || !strings.HasPrefix(r.stdout, "0\n") {
				t.Errorf("image store in a jail with $HOME read-write: %d %q\n%s", r.code, r.stdout, r.stderr)
			}
			r = e.run(t, nil, "image", "ls")
			if r.code != 0 || !strings.Contains(r.stdout, "busybox:latest") {
				t.Errorf("image ls: %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			// A running jail's image cannot be removed from under it.
			bg := exec.Command(wardenBin(t), "run", "--image", "busybox:latest", "--", "sleep", "2")
			bg.Dir, bg.Env = e.cwd, e.env
			if err := bg.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)
			r = e.run(t, nil, "image", "rm", "busybox:latest")
			bg.Wait()
			if r.code != 125 || !strings.Contains(r.stderr, "in use by a running jail") {
				t.Errorf("image rm while a jail runs: %d\n%s", r.code, r.stderr)
			}
			if r = e.run(t, nil, "image", "rm", "busybox:latest"); r.code != 0 {
				t.Errorf("image rm after the jail: %d\n%s", r.code, r.stderr)
			}
		})
	}
}

// TestOverlayRefusals: what overlayfs cannot take is refused before the
// jail exists, with the cause: a directory with mounts below it; --rootfs
// of a file; --rootfs with --image.
func TestOverlayRefusals(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--overlay", "/dev:/x"}, "/dev has mounts below it (/dev/"},
		{[]string{"--rootfs", "/etc/passwd"}, "--rootfs /etc/passwd: not a directory"},
		{[]string{"--rootfs", "/usr", "--image", "x"}, "give one"},
		{[]string{"--overlay-keep", "/tmp/k"}, "exactly one overlay"},
		{[]string{"--image", filepath.Join(e.cwd, "nothing-here")}, "nothing-here"},
	} {
		r := e.run(t, nil, append(append([]string{"run"}, tc.args...), "--", "true")...)
		if r.code != 125 || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "warden: error:") != 1 {
			t.Errorf("%v: %d, want 125 and %q:\n%s", tc.args, r.code, tc.want, r.stderr)
		}
	}
}

// TestImageUser: an image's config.User runs the command as that user
// inside (a name from the image's /etc/passwd, or a number), with the
// caller's subordinate ids mapped; --as-root overrides it.
func TestImageUser(t *testing.T) {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("needs busybox-static: %v", err)
	}
	e := newEnv(t)
	e.env = append(e.env, "XDG_DATA_HOME="+filepath.Join(e.home, ".local/share"))
	bin := imagetest.File("bin/busybox", string(bb))
	bin.Mode = 0o755
	layer := imagetest.Layer{imagetest.Dir("bin"), bin, imagetest.Symlink("bin/sh", "busybox"), imagetest.Symlink("bin/id", "busybox"),
		imagetest.Dir("etc"), imagetest.File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/:/bin/sh\n"),
		imagetest.File("etc/group", "root:x:0:\napp:x:1001:\n"), imagetest.Dir("tmp")}
	for _, tc := range []struct{ user, want string }{{"app", "1000 1001"}, {"1000:1001", "1000 1001"}} {
		ref := filepath.Join(t.TempDir(), "img.tar")
		if err := imagetest.BuildNamed(ref, imagetest.Docker, "user:"+strings.ReplaceAll(tc.user, ":", "-"), image.Config{Cmd: []string{"sh"}, User: tc.user,
			Env: []string{"PATH=/bin"}}, layer); err != nil {
			t.Fatal(err)
		}
		r := e.run(t, nil, "run", "--image", ref, "--", "sh", "-c", "echo $(id -u) $(id -g)")
		if r.code != 0 || strings.TrimSpace(r.stdout) != tc.want {
			t.Errorf("user %q: %d %q, want %q\n%s", tc.user, r.code, r.stdout, tc.want, r.stderr)
		}
		r = e.run(t, nil, "run", "--as-root", "--image", ref, "--", "id", "-u")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "0" {
			t.Errorf("--as-root over user %q: %d %q\n%s", tc.user, r.code, r.stdout, r.stderr)
		}
	}
}
