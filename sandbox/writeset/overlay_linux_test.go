package writeset

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// inUserns runs a shell script as root of a throwaway user and mount
// namespace (util-linux unshare), with env set, and skips the test when
// unprivileged user namespaces are unavailable.
func inUserns(t *testing.T, script string, env ...string) {
	t.Helper()
	if out, err := exec.Command("unshare", "-Urm", "true").CombinedOutput(); err != nil {
		t.Skipf("unprivileged user namespaces unavailable (unshare -Urm: %v: %s)", err, out)
	}
	cmd := exec.Command("unshare", "-Urm", "sh", "-euc", script)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("in user namespace: %v\n%s", err, out)
	}
}

// TestOverlayReal lets a real overlay (userxattr, in a user namespace)
// write the upper, checks Diff's result, then Keeps the upper and mounts
// it over the lower again: the merged tree must be the one the jail saw.
func TestOverlayReal(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	L, U, W, M, S1 := p("lower"), p("upper"), p("work"), p("merged"), p("seen")
	for _, d := range []string{L, U, W, M, S1} {
		mkdir(t, d, ".", 0o755)
	}
	mkfile(t, L, "mod.txt", "original\n", 0o644)
	mkfile(t, L, "same.txt", "hello", 0o644)
	mkfile(t, L, "chm.txt", "chm\n", 0o644)
	mkfile(t, L, "mode.txt", "mode\n", 0o644)
	mkfile(t, L, "del.txt", "del\n", 0o644)
	mkfile(t, L, "deltree/a.txt", "aa", 0o644)
	mkfile(t, L, "deltree/sub/b.txt", "bbb", 0o644)
	mkfile(t, L, "ren.txt", "ren\n", 0o644)
	mkfile(t, L, "opq/same.txt", "same\n", 0o644)
	mkfile(t, L, "opq/other.txt", "other\n", 0o644)
	mkfile(t, L, "t2d", "t2d\n", 0o644)
	mkfile(t, L, "keep/untouched.txt", "u", 0o644)
	for _, d := range []string{"deltree", "deltree/sub", "opq", "keep"} {
		mkdir(t, L, d, 0o755)
	}

	inUserns(t, `
umask 022
mount -t overlay overlay -o "userxattr,lowerdir=$L,upperdir=$U,workdir=$W" "$M"
cd "$M"
echo created > new.txt
mkdir -p newdir/sub && echo x > newdir/sub/f
echo modified > mod.txt
printf x >> same.txt && truncate -s 5 same.txt
chmod 644 chm.txt
chmod 600 mode.txt
rm del.txt
rm -rf deltree
mv ren.txt ren2.txt
rm -rf opq && mkdir opq && echo same > opq/same.txt
rm t2d && mkdir t2d && echo in > t2d/in
ln -s new.txt sym
mkfifo fifo
ln new.txt hard
cd /
cp -a "$M/." "$S1"
`, "L="+L, "U="+U, "W="+W, "M="+M, "S1="+S1)

	s, err := Diff(openDir(t, U), []string{L})
	if err != nil {
		t.Fatal(err)
	}
	checkSet(t, s, []string{
		`created other "/fifo" 0`,
		`created file "/hard" 8`,
		`created file "/new.txt" 8`,
		`created dir "/newdir" 0`,
		`created dir "/newdir/sub" 0`,
		`created file "/newdir/sub/f" 2`,
		`created file "/ren2.txt" 4`,
		`created symlink "/sym" 0`,
		`created file "/t2d/in" 3`,
		`modified file "/mod.txt" 9 content`,
		`modified file "/mode.txt" 5 mode`,
		`modified dir "/t2d" 0 type`,
		`deleted file "/del.txt" 4`,
		`deleted dir "/deltree" 5`,
		`deleted file "/opq/other.txt" 6`,
		`deleted file "/ren.txt" 4`,
	})
	if t.Failed() {
		t.Logf("upper: %q", snapshot(t, U))
	}
	seen := snapshot(t, S1)
	// The overlay leaves a mode 0 directory in its workdir; RemoveAll
	// (after this cleanup) needs it searchable.
	t.Cleanup(func() { os.Chmod(filepath.Join(W, "work"), 0o700) })

	// Keep, once with 0/0 whiteouts and once with xattr whiteouts, and
	// mount each copy as the top lower above the original lower.
	for _, xattrWhiteouts := range []bool{false, true} {
		name := map[bool]string{false: "device whiteouts", true: "xattr whiteouts"}[xattrWhiteouts]
		t.Run(name, func(t *testing.T) {
			if xattrWhiteouts {
				defer func(f func(int, string) error) { mknodWhiteout = f }(mknodWhiteout)
				mknodWhiteout = func(int, string) error { return unix.EPERM }
			}
			d := t.TempDir()
			K, M2, S2 := filepath.Join(d, "kept"), filepath.Join(d, "merged"), filepath.Join(d, "seen")
			mkdir(t, M2, ".", 0o755)
			mkdir(t, S2, ".", 0o755)
			if err := Keep(openDir(t, U), K); err != nil {
				t.Fatal(err)
			}
			var a, b unix.Stat_t
			unix.Lstat(filepath.Join(K, "new.txt"), &a)
			unix.Lstat(filepath.Join(K, "hard"), &b)
			if a.Ino != b.Ino {
				t.Error("hard link not kept")
			}
			inUserns(t, `
mount -t overlay overlay -o "userxattr,lowerdir=$K:$L" "$M2"
cp -a "$M2/." "$S2"
`, "K="+K, "L="+L, "M2="+M2, "S2="+S2)
			diffSnapshots(t, "first overlay vs kept layer over lower", seen, snapshot(t, S2))
		})
	}
}
