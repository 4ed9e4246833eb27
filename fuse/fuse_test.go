package fuse

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sameReport(t *testing.T, got, want Report) {
	t.Helper()
	for _, l := range []*[]string{&want.Read, &want.Written, &want.Created, &want.Deleted, &want.StatOnly} {
		if *l == nil {
			*l = []string{}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("report:\n got %+v\nwant %+v", got, want)
	}
}

// The jail reads A, writes B, creates C, deletes D and stats E; the report
// says exactly that, the host tree shows it, and the jail sees the files as
// its root's. The child exits without unmounting: the end of its mount
// namespace ends the server.
func TestTraceReport(t *testing.T) {
	root, mnt := t.TempDir(), t.TempDir()
	writeFiles(t, root, map[string]string{"A": "aaa\n", "B": "bbb\n", "D": "ddd\n", "E": "eee\n", "sub/F": "fff\n"})
	base := runtime.NumGoroutine()
	j, dev := startJail(t, childSpec{Mnt: mnt, Steps: []string{`set -e
cat A >/dev/null
echo more >>B
echo new >C
rm D
stat E >/dev/null
stat -c '%u:%g %a %n' A C
`}})
	s := serveJail(t, dev, root, Options{})
	out := j.step()
	if want := "0:0 644 A\n0:0 644 C\n"; out != want {
		t.Errorf("jail's view of the owners: got %q, want %q", out, want)
	}
	if err := j.wait(); err != nil {
		t.Fatalf("jail: %v: %s", err, j.stderr.String())
	}
	waitServer(t, s)
	settle(t, base)

	sameReport(t, s.Accesses(), Report{
		Read: []string{"A"}, Written: []string{"B"}, Created: []string{"C"},
		Deleted: []string{"D"}, StatOnly: []string{"E"},
	})
	c := s.Counts()
	if c["A"].OpenRead == 0 || c["A"].Read == 0 || c["B"].OpenWrite == 0 || c["B"].Write == 0 ||
		c["C"].Create != 1 || c["D"].Unlink != 1 || c["E"].Lookup == 0 || c["C"].Missing == 0 {
		t.Errorf("counts: %+v", c)
	}
	if _, ok := c["sub"]; ok {
		t.Errorf("counts show sub, which the jail never touched: %+v", c["sub"])
	}
	if b, _ := os.ReadFile(filepath.Join(root, "B")); string(b) != "bbb\nmore\n" {
		t.Errorf("host B = %q", b)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(root, "C"), &st); err != nil || int(st.Uid) != os.Getuid() || st.Mode&0o777 != 0o644 {
		t.Errorf("host C: %v, uid %d mode %o (want uid %d, 644)", err, st.Uid, st.Mode&0o777, os.Getuid())
	}
	if _, err := os.Stat(filepath.Join(root, "D")); !os.IsNotExist(err) {
		t.Errorf("host D still there: %v", err)
	}
}

// Every kind of change goes through to the host and lands in the right list:
// renames (also over an existing file), links, a FIFO, metadata changes, and
// modes as the jail's umask made them, whatever the server's own umask.
func TestOps(t *testing.T) {
	root, mnt := t.TempDir(), t.TempDir()
	writeFiles(t, root, map[string]string{"A": "a", "B": "b", "E": "e", "F": "f", "G": "gg", "sub/x": "x"})
	for _, err := range []error{os.Mkdir(filepath.Join(root, "emptydir"), 0o755), os.Symlink("A", filepath.Join(root, "L"))} {
		if err != nil {
			t.Fatal(err)
		}
	}
	j, dev := startJail(t, childSpec{Mnt: mnt, Unmount: true, Steps: []string{`set -e
mkdir newdir
echo x >newdir/f
ln -s target newdir/sl
ln newdir/f newdir/hard
mkfifo newdir/fifo
mv B B2
echo y >tmp && mv tmp A
chmod 600 E
touch -d @1000000000 F
truncate -s 1 G
ls sub >/dev/null
readlink L >/dev/null
rmdir emptydir
(umask 0; echo w >W; mkdir WD)
touch S; chmod 4755 S; mkdir -m 2755 SD
mkdir m1; echo q >m1/q; mv m1 m2; cat m2/q >/dev/null
stat -c '%n %a %s %Y %h' A E F G W WD newdir/hard
`}})
	s := serveJail(t, dev, root, Options{})
	out := j.step()
	if want := "A 644 2 "; !strings.HasPrefix(out, want) {
		t.Errorf("jail output:\n%s", out)
	}
	for _, want := range []string{"\nE 600 1 ", "\nF 644 1 1000000000 1\n", "\nG 644 1 ", "\nW 666 2 ", "\nWD 777 ", "\nnewdir/hard 644 2 "} {
		if !strings.Contains(out, want) {
			t.Errorf("jail output lacks %q:\n%s", want, out)
		}
	}
	if err := j.wait(); err != nil {
		t.Fatalf("jail: %v: %s", err, j.stderr.String())
	}
	waitServer(t, s)
	sameReport(t, s.Accesses(), Report{
		Read:    []string{"L", "sub"},
		Written: []string{"A", "E", "F", "G"},
		Created: []string{"B2", "S", "SD", "W", "WD", "m2", "m2/q", "newdir", "newdir/f", "newdir/fifo", "newdir/hard", "newdir/sl"},
		Deleted: []string{"B", "emptydir"},
	})
	// A server running as host root makes no set-uid files for the jail.
	setuid := os.ModeSetuid
	if os.Geteuid() == 0 {
		setuid = 0
	}
	for name, mode := range map[string]os.FileMode{
		"W": 0o666, "WD": 0o777 | os.ModeDir, "E": 0o600, "newdir/fifo": os.ModeNamedPipe | 0o644,
		"S": 0o755 | setuid, "SD": 0o755 | os.ModeDir | os.ModeSetgid,
	} {
		if fi, err := os.Lstat(filepath.Join(root, name)); err != nil || fi.Mode() != mode {
			t.Errorf("host %s: %v %v, want %v", name, err, fi.Mode(), mode)
		}
	}
	if target, _ := os.Readlink(filepath.Join(root, "newdir/sl")); target != "target" {
		t.Errorf("host newdir/sl -> %q", target)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "A")); string(b) != "y\n" {
		t.Errorf("host A = %q", b)
	}
}

// ReadOnly refuses every change with EROFS, changes nothing on the host,
// and records only the read. The child unmounts: that ends the server too.
func TestReadOnly(t *testing.T) {
	root, mnt := t.TempDir(), t.TempDir()
	writeFiles(t, root, map[string]string{"A": "aaa\n", "dir/x": "x"})
	base := runtime.NumGoroutine()
	j, dev := startJail(t, childSpec{Mnt: mnt, Unmount: true, Steps: []string{`
cat A
for c in 'echo x >A' 'echo x >N' 'rm A' 'mkdir M' 'rmdir dir' 'mv A Z' 'chmod 600 A' 'ln -s A L' 'ln A H' 'touch A' 'truncate -s 0 A'; do
	printf '%s: ' "$c"; sh -c "$c" 2>&1 | grep -c 'Read-only file system'
done
`}})
	s := serveJail(t, dev, root, Options{ReadOnly: true})
	out := j.step()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != "aaa" || len(lines) != 12 {
		t.Fatalf("jail output:\n%s", out)
	}
	for _, l := range lines[1:] {
		if !strings.HasSuffix(l, ": 1") {
			t.Errorf("not refused with EROFS: %s", l)
		}
	}
	if err := j.wait(); err != nil {
		t.Fatalf("jail: %v: %s", err, j.stderr.String())
	}
	waitServer(t, s)
	settle(t, base)
	// rmdir looked dir up before the server refused it.
	sameReport(t, s.Accesses(), Report{Read: []string{"A"}, StatOnly: []string{"dir"}})
	entries, _ := os.ReadDir(root)
	if b, _ := os.ReadFile(filepath.Join(root, "A")); string(b) != "aaa\n" || len(entries) != 2 {
		t.Errorf("host tree changed: A=%q, %d entries", b, len(entries))
	}
}

// Nothing the jail does makes the server touch anything outside ROOT:
// symlinks are returned as such and resolved by the kernel in the jail's
// view (where the secret directory is hidden), and ".." at the mount's root
// is the jail's business.
func TestConfinement(t *testing.T) {
	base, secretDir, mnt := t.TempDir(), t.TempDir(), t.TempDir()
	root := filepath.Join(base, "root")
	writeFiles(t, base, map[string]string{"marker": "outside ROOT", "root/A": "a"})
	writeFiles(t, secretDir, map[string]string{"secret": "host secret"})
	for name, target := range map[string]string{
		"passwd": "/etc/passwd", "esc": filepath.Join(secretDir, "secret"), "up": "../..", "rel": "../marker",
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	// Watch the secret: any open of it from now on is the server's, since
	// the jail cannot see it.
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ino)
	if _, err := unix.InotifyAddWatch(ino, filepath.Join(secretDir, "secret"), unix.IN_OPEN|unix.IN_ACCESS); err != nil {
		t.Fatal(err)
	}
	j, dev := startJail(t, childSpec{Mnt: mnt, Hide: []string{secretDir}, Unmount: true, Steps: []string{`
head -c 5 passwd; echo
cat esc 2>&1
cat rel 2>&1
cat ../marker 2>&1
readlink esc up
ls ../ | grep -c marker
`}})
	s := serveJail(t, dev, root, Options{})
	out := j.step()
	if err := j.wait(); err != nil {
		t.Fatalf("jail: %v: %s", err, j.stderr.String())
	}
	waitServer(t, s)
	if strings.Contains(out, "host secret") || strings.Contains(out, "outside ROOT") {
		t.Errorf("the jail read outside ROOT through the server:\n%s", out)
	}
	if !strings.HasPrefix(out, "root:") || strings.Count(out, "No such file or directory") != 3 {
		t.Errorf("jail output:\n%s", out)
	}
	buf := make([]byte, 4096)
	if n, _ := unix.Read(ino, buf); n > 0 {
		t.Errorf("the server opened the secret outside ROOT (%d bytes of inotify events)", n)
	}
	rep := s.Accesses()
	sameReport(t, rep, Report{Read: []string{"esc", "passwd", "rel", "up"}})
	for p, c := range s.Counts() {
		if strings.Contains(p, "..") || strings.HasPrefix(p, "/") {
			t.Errorf("recorded a path outside ROOT: %q", p)
		}
		if c.OpenRead+c.OpenWrite != 0 {
			t.Errorf("the server opened %q", p)
		}
	}
}

// Close stops a server whose mount still exists: the jail's requests fail from its
// next one on, and the server's goroutines end.
func TestClose(t *testing.T) {
	root, mnt := t.TempDir(), t.TempDir()
	writeFiles(t, root, map[string]string{"A": "aaa\n"})
	base := runtime.NumGoroutine()
	j, dev := startJail(t, childSpec{Mnt: mnt, Steps: []string{"cat A", "cat A 2>&1; ls 2>&1; cat A 2>&1", "true"}})
	s := serveJail(t, dev, root, Options{})
	if out := j.step(); out != "aaa\n" {
		t.Fatalf("jail output: %q", out)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The request in flight when the connection goes is aborted
	// (ECONNABORTED), later ones find it gone (ENOTCONN).
	out := j.step()
	if strings.Count(out, "Transport endpoint is not connected")+strings.Count(out, "Software caused connection abort") != 3 {
		t.Errorf("after Close, the jail got:\n%s", out)
	}
	// Linux >= 6.9 stops the server while the mount still exists; older
	// ones when the jail ends.
	if kernelAtLeast(6, 9) {
		waitServer(t, s)
	}
	j.step()
	if err := j.wait(); err != nil {
		t.Fatalf("jail: %v: %s", err, j.stderr.String())
	}
	waitServer(t, s)
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	settle(t, base)
	sameReport(t, s.Accesses(), Report{Read: []string{"A"}})
}

// A listing is a read of the directory; with DirPlus, also a lookup of each
// entry.
func TestDirPlus(t *testing.T) {
	for _, plus := range []bool{false, true} {
		t.Run(fmt.Sprint(plus), func(t *testing.T) {
			root, mnt := t.TempDir(), t.TempDir()
			writeFiles(t, root, map[string]string{"d/x": "x", "d/y": "y"})
			j, dev := startJail(t, childSpec{Mnt: mnt, Steps: []string{"ls d"}})
			s := serveJail(t, dev, root, Options{DirPlus: plus})
			if out := j.step(); out != "x\ny\n" {
				t.Errorf("ls: %q", out)
			}
			j.wait()
			waitServer(t, s)
			want := Report{Read: []string{"d"}}
			if plus {
				want.StatOnly = []string{"d/x", "d/y"}
			}
			sameReport(t, s.Accesses(), want)
		})
	}
}

// Serve fails cleanly (and closes the device) when ROOT cannot be served.
func TestServeBadRoot(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	writeFiles(t, filepath.Dir(notDir), map[string]string{"file": "x"})
	for _, root := range []string{"/nonexistent/warden", notDir} {
		f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
		if err != nil {
			t.Skipf("needs /dev/fuse: %v", err)
		}
		if _, err := Serve(f, root, Options{}); err == nil || !strings.Contains(err.Error(), root) {
			t.Errorf("Serve(%s): %v", root, err)
		}
	}
}

func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var a, b int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &a, &b)
	return a > major || a == major && b >= minor
}

// A directory walk beneath ROOT never leaves it, whatever the names.
func TestOpenDirStaysBeneath(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"d/f": "x"})
	if err := os.Symlink("/", filepath.Join(root, "slash")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d", filepath.Join(root, "rel")); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	tr := &tree{rootfd: fd}
	for _, p := range []string{"..", "d/../..", "/etc", "slash", "slash/etc", "rel", "rel/"} {
		if d, e := tr.openDir(p); e == 0 {
			d.close()
			t.Errorf("openDir(%q) succeeded", p)
		}
	}
	d, e := tr.openDir("d")
	if e != 0 {
		t.Fatalf("openDir(d): %v", e)
	}
	d.close()
	for _, name := range []string{"", ".", "..", "a/b"} {
		if validName(name) {
			t.Errorf("validName(%q)", name)
		}
	}
}
