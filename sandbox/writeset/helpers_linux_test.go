package writeset

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A tiny language for building layers: each call makes one entry below
// root, with explicit modes (the umask must not matter).

func mkfile(t testing.TB, root, rel, content string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t testing.TB, root, rel string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func symlink(t testing.TB, root, rel, target string) {
	t.Helper()
	if err := os.Symlink(target, filepath.Join(root, rel)); err != nil {
		t.Fatal(err)
	}
}

// whiteout makes a 0/0 character device (allowed unprivileged since 5.8).
func whiteout(t testing.TB, root, rel string) {
	t.Helper()
	if err := unix.Mknod(filepath.Join(root, rel), unix.S_IFCHR, 0); err != nil {
		t.Fatalf("mknod whiteout: %v", err)
	}
}

func setxattr(t testing.TB, root, rel, name, value string) {
	t.Helper()
	if err := unix.Setxattr(filepath.Join(root, rel), name, []byte(value), 0); err != nil {
		t.Fatalf("setxattr %s %s: %v", rel, name, err)
	}
}

// xwhiteout makes an xattr whiteout: an empty file with the whiteout
// xattr, in a directory marked opaque "x".
func xwhiteout(t testing.TB, root, rel string) {
	t.Helper()
	mkfile(t, root, rel, "", 0o644)
	setxattr(t, root, rel, xattrWhiteout, "y")
	setxattr(t, root, filepath.Dir(rel), xattrOpaque, "x")
}

func openDir(t testing.TB, p string) int {
	t.Helper()
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// lines renders a Set one entry a line, "kind type path size detail",
// for comparisons that print well.
func lines(s Set) []string {
	var out []string
	for _, l := range [][]Entry{s.Created, s.Modified, s.Deleted} {
		for _, e := range l {
			out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s %q %d %s", e.Kind, e.Type, e.Path, e.Size, e.Detail)))
		}
	}
	return out
}

// checkSet compares s with want (in any order) and checks each list is
// sorted and holds entries of its own kind.
func checkSet(t *testing.T, s Set, want []string) {
	t.Helper()
	for kind, l := range map[Kind][]Entry{Created: s.Created, Modified: s.Modified, Deleted: s.Deleted} {
		if l == nil {
			t.Errorf("%s list is nil, want empty", kind)
		}
		if !slices.IsSortedFunc(l, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) }) {
			t.Errorf("%s list not sorted", kind)
		}
		for _, e := range l {
			if e.Kind != kind {
				t.Errorf("%s list holds %+v", kind, e)
			}
		}
	}
	got := lines(s)
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("set differs\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func modeOf(t testing.TB, p string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}
