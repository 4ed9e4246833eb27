package writeset

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// keepUpper is the synthetic upper plus what only Keep cares about: hard
// links, a sparse file, a fifo, a socket, user xattrs, old mtimes.
func keepUpper(t *testing.T) string {
	_, U := syntheticLayers(t)
	mkfile(t, U, "hard1", "linked", 0o640)
	if err := os.Link(filepath.Join(U, "hard1"), filepath.Join(U, "newdir/hard2")); err != nil {
		t.Fatal(err)
	}
	mkfile(t, U, "sparse", "", 0o644)
	if err := os.Truncate(filepath.Join(U, "sparse"), 1<<40); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(U, "fifo"), 0o620); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(U, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	setxattr(t, U, "plain/new.txt", "user.test", "value")
	setxattr(t, U, "newdir", "user.dirattr", "d")
	setxattr(t, U, "same.txt", "user.overlay.origin", "forged") // the overlay's own: not copied
	old := time.Date(2003, 4, 5, 6, 7, 8, 9, time.UTC)
	for _, p := range []string{"same.txt", "newdir/sub", "newdir", "."} {
		if err := os.Chtimes(filepath.Join(U, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Lutimes(filepath.Join(U, "passwd"), []unix.Timeval{{Sec: 1e9}, {Sec: 1e9}}); err != nil {
		t.Fatal(err)
	}
	return U
}

func TestKeep(t *testing.T) {
	U := keepUpper(t)
	K := filepath.Join(t.TempDir(), "parent", "kept") // parents are made
	if err := Keep(openDir(t, U), K); err != nil {
		t.Fatal(err)
	}
	want, got := snapshot(t, U), snapshot(t, K)
	// Upper xattr whiteouts become 0/0 devices, so "x" goes.
	want["xw"] = strings.Replace(want["xw"], " opaque=x", "", 1)
	diffSnapshots(t, "upper vs kept", want, got)

	var a, b unix.Stat_t
	unix.Lstat(filepath.Join(K, "hard1"), &a)
	unix.Lstat(filepath.Join(K, "newdir/hard2"), &b)
	if a.Ino != b.Ino {
		t.Error("hard link not kept")
	}
	unix.Lstat(filepath.Join(K, "sparse"), &a)
	if a.Size != 1<<40 || a.Blocks > 2048 {
		t.Errorf("sparse file: size %d, %d blocks", a.Size, a.Blocks)
	}
	for _, p := range []string{"gone.txt", "gonedir", "nothing", "xw/w"} {
		unix.Lstat(filepath.Join(K, p), &a)
		if !isWhiteoutDev(&a) {
			t.Errorf("%s: not a whiteout device (mode %o)", p, a.Mode)
		}
	}
	if hasXattr(filepath.Join(K, "same.txt"), "user.overlay.origin") {
		t.Error("user.overlay.origin copied")
	}
	if xattr(filepath.Join(K, "opq"), xattrOpaque) != "y" {
		t.Error("opaque mark not kept")
	}
	for _, d := range []string{U, K} {
		os.Chmod(filepath.Join(d, "lockeddir"), 0o755)
	}
}

// Where mknod of a whiteout fails, Keep writes xattr whiteouts.
func TestKeepXattrWhiteouts(t *testing.T) {
	defer func(f func(int, string) error) { mknodWhiteout = f }(mknodWhiteout)
	mknodWhiteout = func(int, string) error { return unix.EPERM }
	_, U := syntheticLayers(t)
	K := filepath.Join(t.TempDir(), "kept")
	if err := Keep(openDir(t, U), K); err != nil {
		t.Fatal(err)
	}
	want, got := snapshot(t, U), snapshot(t, K)
	want["."] += " opaque=x" // root whiteouts: gone.txt, gonedir, nothing
	diffSnapshots(t, "upper vs kept", want, got)
	var st unix.Stat_t
	unix.Lstat(filepath.Join(K, "gone.txt"), &st)
	if !isReg(&st) || !hasXattr(filepath.Join(K, "gone.txt"), xattrWhiteout) {
		t.Errorf("gone.txt: mode %o, not an xattr whiteout", st.Mode)
	}
	for _, d := range []string{U, K} {
		os.Chmod(filepath.Join(d, "lockeddir"), 0o755)
	}
}

func TestKeepRefusesNonEmpty(t *testing.T) {
	U := t.TempDir()
	mkfile(t, U, "a", "a", 0o644)
	K := t.TempDir()
	mkfile(t, K, "x", "x", 0o644)
	if err := Keep(openDir(t, U), K); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty dst: err = %v", err)
	}
	empty := t.TempDir()
	if err := Keep(openDir(t, U), empty); err != nil {
		t.Errorf("empty dst: %v", err)
	}
	if err := Keep(openDir(t, U), filepath.Join(K, "x")); err == nil {
		t.Error("dst is a file: no error")
	}
}

func TestKeepDeepAndDevices(t *testing.T) {
	U := t.TempDir()
	makeDeep(t, U, "deep", 2000)
	var skipped bool
	if os.Geteuid() == 0 {
		if err := unix.Mknod(filepath.Join(U, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		skipped = true
	}
	K := filepath.Join(t.TempDir(), "kept")
	err := Keep(openDir(t, U), K)
	var inc *IncompleteError
	switch {
	case skipped && (!errors.As(err, &inc) || len(inc.Skipped) != 1 || inc.Skipped[0].Path != "/null"):
		t.Errorf("device node: err = %v", err)
	case !skipped && err != nil:
		t.Error(err)
	}
	// The bottom file arrived: walk down by fds.
	fd := openDir(t, K)
	for i := 0; i < 2000; i++ {
		n := "d"
		if i == 0 {
			n = "deep"
		}
		next, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("level %d: %v", i, err)
		}
		if i > 0 {
			unix.Close(fd)
		}
		fd = next
	}
	var st unix.Stat_t
	if err := unix.Fstatat(fd, "bottom", &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Errorf("bottom: %v", err)
	}
	unix.Close(fd)
}
