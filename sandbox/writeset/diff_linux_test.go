package writeset

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// syntheticLayers builds, by hand, one lower and an upper as a jail's
// overlay would leave them, with every case Diff distinguishes.
func syntheticLayers(t *testing.T) (lower, upper string) {
	dir := t.TempDir()
	L, U := filepath.Join(dir, "lower"), filepath.Join(dir, "upper")
	mkdir(t, L, ".", 0o755)
	mkdir(t, U, ".", 0o755)

	mkfile(t, L, "same.txt", "hello\n", 0o644) // copied up, unchanged
	mkfile(t, U, "same.txt", "hello\n", 0o644)
	mkfile(t, L, "chm.txt", "chm\n", 0o644) // chmod
	mkfile(t, U, "chm.txt", "chm\n", 0o600)
	mkfile(t, L, "cont.txt", "aaaa", 0o644) // same size, other content
	mkfile(t, U, "cont.txt", "bbbb", 0o644)
	mkfile(t, L, "both.txt", "aaaa", 0o644)
	mkfile(t, U, "both.txt", "bbbbb", 0o755)
	mkfile(t, L, "t2d", "file", 0o644) // file became a directory
	mkdir(t, U, "t2d", 0o755)
	setxattr(t, U, "t2d", xattrOpaque, "y")
	mkfile(t, U, "t2d/x", "x", 0o644)
	mkfile(t, L, "d2f/x", "12", 0o644) // directory became a file
	mkdir(t, L, "d2f", 0o755)
	mkfile(t, U, "d2f", "now a file", 0o644)
	mkfile(t, L, "gone.txt", "gone!", 0o644) // deleted file
	whiteout(t, U, "gone.txt")
	mkfile(t, L, "gonedir/a", "abc", 0o644) // deleted tree
	mkfile(t, L, "gonedir/b/c", "defg", 0o644)
	whiteout(t, U, "gonedir")
	whiteout(t, U, "nothing")                  // a whiteout over nothing
	mkfile(t, U, "newdir/f.txt", "new", 0o644) // created tree
	mkdir(t, U, "newdir/sub", 0o755)
	mkdir(t, U, "newdir", 0o755)
	mkfile(t, L, "opq/keep.txt", "keep", 0o644) // rm -rf opq; mkdir opq; recreate keep.txt
	mkfile(t, L, "opq/drop.txt", "dropped", 0o644)
	mkfile(t, L, "opq/sub/s", "ss", 0o644)
	mkdir(t, L, "opq", 0o755)
	mkfile(t, U, "opq/keep.txt", "keep", 0o644)
	mkdir(t, U, "opq", 0o755)
	setxattr(t, U, "opq", xattrOpaque, "y")
	mkfile(t, L, "passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644) // replaced by a symlink out
	symlink(t, U, "passwd", "/etc/passwd")
	symlink(t, L, "link", "a") // symlink retargeted
	symlink(t, U, "link", "b")
	mkfile(t, L, "mdir/inner.txt", "inner", 0o644) // directory chmod
	mkdir(t, L, "mdir", 0o755)
	mkdir(t, U, "mdir", 0o700)
	mkdir(t, L, "plain", 0o755) // directory in both, new file below
	mkdir(t, U, "plain", 0o755)
	mkfile(t, U, "plain/new.txt", "n", 0o644)
	mkfile(t, L, "secret", "s3cret", 0o644) // unreadable to a plain host user
	mkfile(t, U, "secret", "s3cret", 0o000) // same content: only a read tells
	mkfile(t, U, "new\nline", "x", 0o644)
	mkfile(t, L, "realdir/f", "real", 0o644) // a lower symlink on the path: not followed
	symlink(t, L, "lnk", "realdir")
	mkfile(t, U, "lnk/f", "up", 0o644)
	mkdir(t, L, "xw", 0o755) // xattr whiteout
	mkfile(t, L, "xw/w", "w", 0o644)
	mkdir(t, U, "xw", 0o755)
	xwhiteout(t, U, "xw/w")
	mkfile(t, U, "fakewo", "", 0o644) // whiteout xattr, but parent not "x": a file
	setxattr(t, U, "fakewo", xattrWhiteout, "y")
	mkfile(t, U, "lockeddir/in", "i", 0o644) // chmod 000 directory
	mkdir(t, U, "lockeddir", 0o000)
	return L, U
}

var syntheticWant = []string{
	`created file "/fakewo" 0`,
	`created file "/lnk/f" 2`,
	`created dir "/lockeddir" 0`,
	`created file "/lockeddir/in" 1`,
	`created file "/new\nline" 1`,
	`created dir "/newdir" 0`,
	`created file "/newdir/f.txt" 3`,
	`created dir "/newdir/sub" 0`,
	`created file "/plain/new.txt" 1`,
	`created file "/t2d/x" 1`,
	`modified file "/both.txt" 5 content+mode`,
	`modified file "/chm.txt" 4 mode`,
	`modified file "/cont.txt" 4 content`,
	`modified file "/d2f" 10 type`,
	`modified symlink "/link" 0 content`,
	`modified dir "/lnk" 0 type`,
	`modified dir "/mdir" 0 mode`,
	`modified symlink "/passwd" 0 type`,
	`modified file "/secret" 6 mode`,
	`modified dir "/t2d" 0 type`,
	`deleted file "/gone.txt" 5`,
	`deleted dir "/gonedir" 7`,
	`deleted file "/opq/drop.txt" 7`,
	`deleted dir "/opq/sub" 2`,
	`deleted file "/xw/w" 1`,
}

func TestDiffSynthetic(t *testing.T) {
	L, U := syntheticLayers(t)
	// The upper fd may come as an O_PATH one (SCM_RIGHTS from the jail).
	upper, err := unix.Open(U, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(upper)
	s, err := Diff(upper, []string{L})
	if err != nil {
		t.Fatal(err)
	}
	checkSet(t, s, syntheticWant)
	// The permission fixes for reading were put back.
	if m := modeOf(t, filepath.Join(U, "secret")).Perm(); m != 0 {
		t.Errorf("upper secret mode now %v", m)
	}
	if m := modeOf(t, filepath.Join(U, "lockeddir")).Perm(); m != 0 {
		t.Errorf("upper lockeddir mode now %v", m)
	}
	os.Chmod(filepath.Join(U, "lockeddir"), 0o755) // for t.TempDir's cleanup
}

func TestDiffNoLowers(t *testing.T) {
	_, U := syntheticLayers(t)
	s, err := Diff(openDir(t, U), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Everything but whiteouts is new; nothing is modified or deleted.
	if len(s.Modified) != 0 || len(s.Deleted) != 0 || len(s.Created) == 0 {
		t.Errorf("got %q", lines(s))
	}
	for _, e := range s.Created {
		if e.Path == "/gone.txt" || e.Path == "/nothing" || e.Path == "/xw/w" {
			t.Errorf("whiteout reported as created: %+v", e)
		}
	}
	os.Chmod(filepath.Join(U, "lockeddir"), 0o755)
}

// Image-like lowers: whiteouts and opaque directories in the lowers
// themselves, a directory over a file, a file between directories.
func TestDiffMultiLower(t *testing.T) {
	dir := t.TempDir()
	L1, L2, L3, U := filepath.Join(dir, "l1"), filepath.Join(dir, "l2"), filepath.Join(dir, "l3"), filepath.Join(dir, "u")
	for _, d := range []string{L1, L2, L3, U} {
		mkdir(t, d, ".", 0o755)
	}
	// a: whited out in L2, made again in U → created.
	mkfile(t, L3, "a", "a3", 0o644)
	whiteout(t, L2, "a")
	mkfile(t, U, "a", "new a", 0o644)
	// d: L2 opaque hides L3's x and y; U opaque empty → only z deleted.
	mkfile(t, L3, "d/x", "x", 0o644)
	mkfile(t, L3, "d/y", "yy", 0o644)
	mkfile(t, L2, "d/z", "zzz", 0o644)
	setxattr(t, L2, "d", xattrOpaque, "y")
	mkdir(t, U, "d", 0o755)
	setxattr(t, U, "d", xattrOpaque, "y")
	// d2: L1 merges with opaque L2 (L3's r hidden); U deletes it → p+q.
	mkfile(t, L3, "d2/r", "rrr", 0o644)
	mkfile(t, L2, "d2/q", "qq", 0o644)
	setxattr(t, L2, "d2", xattrOpaque, "y")
	mkfile(t, L1, "d2/p", "p", 0o644)
	whiteout(t, U, "d2")
	// f: the newest lower has a symlink; U's file equal to L2's is a type change.
	mkfile(t, L2, "f", "same", 0o644)
	symlink(t, L1, "f", "elsewhere")
	mkfile(t, U, "f", "same", 0o644)
	// g: equal to the newest lower's version → nothing.
	mkfile(t, L2, "g", "old", 0o644)
	mkfile(t, L1, "g", "new", 0o644)
	mkfile(t, U, "g", "new", 0o644)
	// h: a directory in L1 over a file in L3; a new file below.
	mkfile(t, L3, "h", "hfile", 0o644)
	mkfile(t, L1, "h/hh", "hh", 0o644)
	mkdir(t, U, "h", 0o755)
	mkfile(t, U, "h/hnew", "n", 0o644)
	// xd: L1 whites out L3's xd/gone with an xattr whiteout.
	mkfile(t, L3, "xd/gone", "g3", 0o644)
	mkdir(t, L1, "xd", 0o755)
	xwhiteout(t, L1, "xd/gone")
	mkdir(t, U, "xd", 0o755)
	mkfile(t, U, "xd/gone", "G", 0o644)
	// keep3: only in the oldest layer; deleted.
	mkfile(t, L3, "keep3", "k", 0o644)
	whiteout(t, U, "keep3")
	// m: dir in L1, file in L2 (stops the merge), dir in L3 → only m1.
	mkfile(t, L1, "m/m1", "1", 0o644)
	mkfile(t, L2, "m", "file", 0o644)
	mkfile(t, L3, "m/m3", "333", 0o644)
	whiteout(t, U, "m")
	// sl: a symlink to a directory in L2; U's sl/x is not compared with L2/d's.
	symlink(t, L2, "sl", "d")
	mkdir(t, U, "sl", 0o755)
	mkfile(t, U, "sl/z", "zzz", 0o644)

	s, err := Diff(openDir(t, U), []string{L1, L2, L3})
	if err != nil {
		t.Fatal(err)
	}
	checkSet(t, s, []string{
		`created file "/a" 5`,
		`created file "/h/hnew" 1`,
		`created file "/sl/z" 3`,
		`created file "/xd/gone" 1`,
		`modified file "/f" 4 type`,
		`modified dir "/sl" 0 type`,
		`deleted file "/d/z" 3`,
		`deleted dir "/d2" 3`,
		`deleted file "/keep3" 1`,
		`deleted dir "/m" 1`,
	})
}

// A hostile upper: symlink loops, symlinks out of the upper named like
// lower entries, fifos, a deep tree, a huge sparse file.
func TestDiffHostile(t *testing.T) {
	dir := t.TempDir()
	L, U, out := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "outside")
	for _, d := range []string{L, U, out} {
		mkdir(t, d, ".", 0o755)
	}
	mkfile(t, out, "secret", "the secret\n", 0o644)
	mkfile(t, out, "dir/file", "x", 0o644)
	symlink(t, U, "loop1", "loop2")
	symlink(t, U, "loop2", "loop1")
	mkfile(t, L, "mod.txt", "the secret\n", 0o644) // same content as the target
	symlink(t, U, "mod.txt", filepath.Join(out, "secret"))
	mkfile(t, L, "dirlink/f", "f", 0o644)
	symlink(t, U, "dirlink", filepath.Join(out, "dir"))
	mkfile(t, L, "fifo", "", 0o644)
	for _, f := range []string{"fifo", "fifo2"} {
		if err := unix.Mkfifo(filepath.Join(U, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mkfile(t, L, "sparse", "small", 0o644)
	mkfile(t, U, "sparse", "", 0o644)
	if err := os.Truncate(filepath.Join(U, "sparse"), 1<<40); err != nil {
		t.Fatal(err)
	}
	const depth = 2000
	makeDeep(t, U, "deep", depth)

	// Reads of the outside would move these atimes.
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range []string{out, filepath.Join(out, "secret"), filepath.Join(out, "dir")} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	var s Set
	var err error
	go func() {
		defer close(done)
		s, err = Diff(openDir(t, U), []string{L})
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("Diff did not terminate")
	}
	if err != nil {
		t.Fatal(err)
	}
	var deep int
	var rest []Entry
	for _, e := range s.Created {
		if strings.HasPrefix(e.Path, "/deep") {
			deep++
			continue
		}
		rest = append(rest, e)
	}
	if deep != depth+1 { // the directories and the file at the bottom
		t.Errorf("deep tree: %d created entries, want %d", deep, depth+1)
	}
	s.Created = rest
	checkSet(t, s, []string{
		`created other "/fifo2" 0`,
		`created symlink "/loop1" 0`,
		`created symlink "/loop2" 0`,
		`modified symlink "/dirlink" 0 type`,
		`modified other "/fifo" 0 type`,
		`modified symlink "/mod.txt" 0 type`,
		`modified file "/sparse" 1099511627776 content`,
	})
	for _, p := range []string{out, filepath.Join(out, "secret"), filepath.Join(out, "dir")} {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		if at := time.Unix(st.Atim.Unix()); !at.Equal(old) {
			t.Errorf("%s was read (atime %v)", p, at)
		}
	}
}

// makeDeep makes root/name/d/d/.../d (levels directories) with a file at
// the bottom, through fds: the path is longer than PATH_MAX.
func makeDeep(t testing.TB, root, name string, levels int) {
	t.Helper()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < levels; i++ {
		n := "d"
		if i == 0 {
			n = name
		}
		if err := unix.Mkdirat(fd, n, 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
	}
	f, err := unix.Openat(fd, "bottom", unix.O_WRONLY|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(f)
	unix.Close(fd)
}

func TestDiffLimits(t *testing.T) {
	dir := t.TempDir()
	L, U := filepath.Join(dir, "lower"), filepath.Join(dir, "upper")
	mkdir(t, L, ".", 0o755)
	mkdir(t, U, ".", 0o755)
	makeDeep(t, U, "deep", 30)
	for _, f := range []string{"a", "b", "c", "d", "e", "f"} {
		mkfile(t, U, f, f, 0o644)
	}

	defer func(d, e int) { MaxDepth, MaxEntries = d, e }(MaxDepth, MaxEntries)
	MaxDepth = 10
	s, err := Diff(openDir(t, U), []string{L})
	if !errors.Is(err, ErrLimit) {
		t.Errorf("depth: err = %v, want ErrLimit", err)
	}
	// Levels 1..10 are walked; the level-11 directory is reported, not entered.
	if n := len(s.Created); n != 6+11 {
		t.Errorf("depth: %d created, want %d: %q", n, 6+11, lines(s))
	}

	MaxDepth, MaxEntries = 4096, 5
	s, err = Diff(openDir(t, U), []string{L})
	if !errors.Is(err, ErrLimit) || len(s.Created) != 5 {
		t.Errorf("entries: err = %v, %d created", err, len(s.Created))
	}
}

func TestDiffBadLower(t *testing.T) {
	U := t.TempDir()
	if _, err := Diff(openDir(t, U), []string{filepath.Join(U, "missing")}); err == nil {
		t.Error("missing lower: no error")
	}
}
