package writeset

import (
	"crypto/sha256"
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
		t.Fatalf("snapshot: %v", err)
	}
	return fi.Mode()
}

// snapshot describes every entry below root, by relative path: type,
// permission bits, mtime, and content digest, symlink target, user
// xattrs (not the overlay's) or opaque mark. Whiteouts of both forms read
// "whiteout". Unreadable entries are made readable for the moment.
func snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	type item struct {
		rel     string
		parentX bool
	}
	stack := []item{{rel: "."}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		p := filepath.Join(root, it.rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatalf("snapshot %s: %v", p, err)
		}
		desc := fmt.Sprintf("%s %04o mtime=%d", typeOf(&st), st.Mode&0o7777, st.Mtim.Nano())
		switch {
		case isWhiteoutDev(&st) || it.parentX && isReg(&st) && st.Size == 0 && hasXattr(p, xattrWhiteout):
			out[it.rel] = "whiteout"
			continue
		case isReg(&st):
			b := readAll(t, p, &st)
			desc += fmt.Sprintf(" size=%d sum=%x", st.Size, sha(b))
		case st.Mode&unix.S_IFMT == unix.S_IFLNK:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case isDir(&st):
			op := xattr(p, xattrOpaque)
			if op != "" {
				desc += " opaque=" + op
			}
			// Entries are stat'ed after this: the search bit must stay
			// until the end.
			if st.Mode&0o700 != 0o700 {
				if err := os.Chmod(p, os.FileMode(st.Mode&0o777|0o700)); err != nil {
					t.Fatalf("snapshot %s: %v", p, err)
				}
				defer os.Chmod(p, os.FileMode(st.Mode&0o777))
				st.Mode |= 0o700
			}
			ents, err := os.ReadDir(p)
			if err != nil {
				t.Fatalf("snapshot %s: %v", p, err)
			}
			for _, e := range ents {
				stack = append(stack, item{rel: filepath.Join(it.rel, e.Name()), parentX: op == "x"})
			}
		default:
			desc = fmt.Sprintf("other %o %04o", st.Mode&unix.S_IFMT, st.Mode&0o7777)
		}
		if isReg(&st) || isDir(&st) {
			desc += userXattrs(t, p, &st)
		}
		out[it.rel] = desc
	}
	return out
}

func fixPerm(t testing.TB, p string, st *unix.Stat_t, add uint32, f func()) {
	t.Helper()
	if st.Mode&add != add {
		if err := os.Chmod(p, os.FileMode(st.Mode&0o777|add)); err != nil {
			t.Fatalf("snapshot %s: %v", p, err)
		}
		defer os.Chmod(p, os.FileMode(st.Mode&0o777))
	}
	f()
}

func readAll(t testing.TB, p string, st *unix.Stat_t) []byte {
	t.Helper()
	if st.Size > 1<<20 {
		return []byte(fmt.Sprintf("big %d", st.Size)) // sparse test files: size only
	}
	var b []byte
	fixPerm(t, p, st, 0o400, func() {
		var err error
		if b, err = os.ReadFile(p); err != nil {
			t.Fatalf("snapshot %s: %v", p, err)
		}
	})
	return b
}

func sha(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:8]
}

func hasXattr(p, name string) bool {
	_, err := unix.Lgetxattr(p, name, nil)
	return err == nil
}

func xattr(p, name string) string {
	b := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, b)
	if err != nil {
		return ""
	}
	return string(b[:n])
}

// userXattrs lists user.* xattrs but the overlay's, " name=value" sorted.
func userXattrs(t testing.TB, p string, st *unix.Stat_t) string {
	var s string
	fixPerm(t, p, st, 0o400, func() {
		b := make([]byte, 4096)
		n, err := unix.Llistxattr(p, b)
		if err != nil {
			return
		}
		var names []string
		for _, name := range strings.Split(string(b[:n]), "\x00") {
			if strings.HasPrefix(name, "user.") && !strings.HasPrefix(name, xattrOverlay) {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		for _, name := range names {
			s += " " + name + "=" + xattr(p, name)
		}
	})
	return s
}

// diffSnapshots reports the differences between two snapshots.
func diffSnapshots(t *testing.T, what string, a, b map[string]string) {
	t.Helper()
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if a[k] != b[k] {
			t.Errorf("%s: %q:\n  %s\n  %s", what, k, a[k], b[k])
		}
	}
}
