package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var t0 = time.Date(2020, 2, 3, 4, 5, 6, 789000000, time.UTC)

func hdr(typ byte, name string, mode int64) *tar.Header {
	return &tar.Header{Typeflag: typ, Name: name, Mode: mode, ModTime: t0, Format: tar.FormatPAX}
}

type tentry struct {
	h       *tar.Header
	content string
}

func reg(name, content string, mode int64) tentry {
	h := hdr(tar.TypeReg, name, mode)
	h.Size = int64(len(content))
	return tentry{h, content}
}
func dir(name string, mode int64) tentry { return tentry{h: hdr(tar.TypeDir, name, mode)} }
func sym(name, target string) tentry {
	h := hdr(tar.TypeSymlink, name, 0o777)
	h.Linkname = target
	return tentry{h: h}
}
func hard(name, target string) tentry {
	h := hdr(tar.TypeLink, name, 0)
	h.Linkname = target
	return tentry{h: h}
}

// extract runs the extractor on entries in a new directory, through the
// scanner if scan; it returns the directory and the error.
func extract(t *testing.T, scan bool, entries ...tentry) (string, error) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "layer")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeAll(root) })
	// Through a real tar, as the store reads it.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := tw.WriteHeader(e.h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.content)
	}
	tw.Close()
	x, err := newExtractor(root)
	if err != nil {
		t.Fatal(err)
	}
	defer x.close()
	tr := tar.NewReader(&buf)
	sc := newScanner()
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if scan {
			skip, why := sc.check(h)
			if why != "" {
				return root, &errHostile{why}
			}
			if skip {
				continue
			}
		}
		if err := x.entry(h, tr); err != nil {
			return root, err
		}
	}
	return root, x.finish()
}

func lstat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func xattr(p, name string) (string, bool) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "", false
	}
	return string(buf[:n]), true
}

func TestExtractModesTimesLinks(t *testing.T) {
	suid := reg("ro/bin/su", "su", 0o4755)
	sgidDir := dir("ro/shared", 0o2775)
	owned := reg("ro/owned", "x", 0o640)
	owned.h.Uid, owned.h.Gid = 1000, 0
	fifo := tentry{h: hdr(tar.TypeFifo, "ro/fifo", 0o620)}
	link := sym("ro/link", "/etc/passwd")
	link.h.ModTime = t0.Add(time.Hour)
	root, err := extract(t, true,
		dir("./", 0o555), // the root keeps u+rwx: 0755
		dir("ro", 0o555), // made 0700, 0555 at the end: children go in
		dir("ro/bin", 0o555),
		suid, sgidDir, dir("tmp", 0o1777), owned, fifo, link,
		hard("ro/bin/su2", "ro/bin/su"),
		reg("implicit/parent/file", "p", 0o644),
		dir("locked", 0), reg("locked/inside", "i", 0o400),
	)
	if err != nil {
		t.Fatal(err)
	}
	// Read a 0000 directory as its owner: give it back x for the test.
	defer os.Chmod(filepath.Join(root, "locked"), 0o700)
	for _, c := range []struct {
		path string
		mode uint32
	}{
		{".", unix.S_IFDIR | 0o755}, {"ro", unix.S_IFDIR | 0o555}, {"ro/bin", unix.S_IFDIR | 0o555},
		{"ro/bin/su", unix.S_IFREG | 0o4755}, {"ro/shared", unix.S_IFDIR | 0o2775}, {"tmp", unix.S_IFDIR | 0o1777},
		{"ro/owned", unix.S_IFREG | 0o640}, {"ro/fifo", unix.S_IFIFO | 0o620}, {"ro/link", unix.S_IFLNK | 0o777},
		{"implicit", unix.S_IFDIR | 0o755}, {"implicit/parent", unix.S_IFDIR | 0o755}, {"locked", unix.S_IFDIR},
	} {
		if st := lstat(t, filepath.Join(root, c.path)); st.Mode != c.mode {
			t.Errorf("%s: mode %o; want %o", c.path, st.Mode, c.mode)
		}
	}
	for _, p := range []string{"ro", "ro/bin", "ro/bin/su", "ro/shared", "tmp", "ro/fifo"} {
		if st := lstat(t, filepath.Join(root, p)); st.Mtim.Sec != t0.Unix() || st.Mtim.Nsec != int64(t0.Nanosecond()) {
			t.Errorf("%s: mtime %d.%09d; want %d.%09d (the tar's, after its children were made)", p, st.Mtim.Sec, st.Mtim.Nsec, t0.Unix(), t0.Nanosecond())
		}
	}
	if st := lstat(t, filepath.Join(root, "ro/link")); st.Mtim.Sec != t0.Unix()+3600 {
		t.Errorf("the symlink's own mtime is %d; want %d", st.Mtim.Sec, t0.Unix()+3600)
	}
	if l, err := os.Readlink(filepath.Join(root, "ro/link")); err != nil || l != "/etc/passwd" {
		t.Errorf("ro/link -> %q, %v", l, err)
	}
	a, b := lstat(t, filepath.Join(root, "ro/bin/su")), lstat(t, filepath.Join(root, "ro/bin/su2"))
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("ro/bin/su2 is not a hard link of ro/bin/su (inodes %d, %d; links %d)", a.Ino, b.Ino, a.Nlink)
	}
	if b, err := os.ReadFile(filepath.Join(root, "ro/bin/su")); err != nil || string(b) != "su" {
		t.Errorf("ro/bin/su = %q, %v", b, err)
	}
	if st := lstat(t, filepath.Join(root, "ro/owned")); int(st.Uid) != os.Getuid() {
		t.Errorf("ro/owned belongs to %d; want the caller %d", st.Uid, os.Getuid())
	}
	os.Chmod(filepath.Join(root, "locked"), 0o700)
	if b, err := os.ReadFile(filepath.Join(root, "locked/inside")); err != nil || string(b) != "i" {
		t.Errorf("locked/inside (in a 0000 dir) = %q, %v", b, err)
	}
}

func TestRootlessXattr(t *testing.T) {
	// Golden values from proto.Marshal(&rootlesscontainers.Resource{...}),
	// umoci's encoding.
	for _, c := range []struct {
		uid, gid int
		want     string
	}{
		{0, 0, ""},
		{1000, 0, "08e80710ffffffff0f"},
		{0, 1000, "08ffffffff0f10e807"},
		{1000, 1000, "08e80710e807"},
		{1, 2, "08011002"},
		{65534, 65534, "08feff0310feff03"},
		{127, 128, "087f108001"},
	} {
		if got := hex.EncodeToString(rootlessValue(c.uid, c.gid)); got != c.want {
			t.Errorf("rootlessValue(%d, %d) = %s; want %s", c.uid, c.gid, got, c.want)
		}
	}
	owned := reg("owned", "x", 0o644)
	owned.h.Uid, owned.h.Gid = 1000, 100
	d := dir("d", 0o755)
	d.h.Uid = 33
	forged := reg("forged", "x", 0o644) // the image's own xattr is replaced
	forged.h.PAXRecords = map[string]string{"SCHILY.xattr." + rootlessXattr: "\x08\x00\x10\x00"}
	root, err := extract(t, true, owned, d, forged, reg("root", "x", 0o644))
	if err != nil {
		t.Fatal(err)
	}
	decode := func(v string) (uint64, uint64) {
		b := []byte(v)
		if len(b) < 2 || b[0] != 0x08 {
			return 0, 0
		}
		u, n := binary.Uvarint(b[1:])
		if n <= 0 || len(b) < 2+n || b[1+n] != 0x10 {
			return 0, 0
		}
		g, _ := binary.Uvarint(b[2+n:])
		return u, g
	}
	for _, c := range []struct {
		path     string
		uid, gid uint64
	}{{"owned", 1000, 100}, {"d", 33, uint64(noopID)}} {
		v, ok := xattr(filepath.Join(root, c.path), rootlessXattr)
		if u, g := decode(v); !ok || u != c.uid || g != c.gid {
			t.Errorf("%s: %s = %x (%d:%d); want %d:%d", c.path, rootlessXattr, v, u, g, c.uid, c.gid)
		}
	}
	for _, p := range []string{"forged", "root"} {
		if v, ok := xattr(filepath.Join(root, p), rootlessXattr); ok {
			t.Errorf("%s (owner 0:0) has %s = %x; want none", p, rootlessXattr, v)
		}
	}
}

func TestExtractXattrs(t *testing.T) {
	f := reg("f", "x", 0o644)
	f.h.PAXRecords = map[string]string{
		"SCHILY.xattr.user.mime":               "text/plain",
		"SCHILY.xattr.user.overlay.opaque":     "y",
		"SCHILY.xattr.user.overlay.redirect":   "/etc",
		"SCHILY.xattr.security.capability":     "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		"SCHILY.xattr.trusted.overlay.opaque":  "y",
		"SCHILY.xattr.system.posix_acl_access": "\x02\x00\x00\x00",
	}
	d := dir("d", 0o755)
	d.h.PAXRecords = map[string]string{"SCHILY.xattr.user.overlay.opaque": "y", "SCHILY.xattr.user.dir": "kept"}
	root, err := extract(t, false, f, d) // without the scanner: the extractor keeps only user.*
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"user.mime": "text/plain", "user.overlay.overlay.opaque": "y", "user.overlay.overlay.redirect": "/etc"}
	for k, v := range want {
		if got, ok := xattr(filepath.Join(root, "f"), k); !ok || got != v {
			t.Errorf("f: %s = %q, %v; want %q", k, got, ok, v)
		}
	}
	for _, k := range []string{"user.overlay.opaque", "user.overlay.redirect", "security.capability", "trusted.overlay.opaque", "system.posix_acl_access"} {
		if _, ok := xattr(filepath.Join(root, "f"), k); ok {
			t.Errorf("f has %s; want it dropped or escaped", k)
		}
	}
	if _, ok := xattr(filepath.Join(root, "d"), "user.overlay.opaque"); ok {
		t.Errorf("d is opaque through a PAX xattr; only .wh..wh..opq makes a directory opaque")
	}
	if got, _ := xattr(filepath.Join(root, "d"), "user.dir"); got != "kept" {
		t.Errorf("d: user.dir = %q; want kept", got)
	}
}

func TestExtractWhiteouts(t *testing.T) {
	root, err := extract(t, true,
		reg("a/.wh.gone", "", 0o644), // plain whiteout (parent made)
		reg("b/.wh.x", "", 0o644),    // removed by the opaque that follows
		reg("b/.wh..wh..opq", "", 0o644),
		reg("b/.wh.y", "", 0o644), // inside an opaque dir: not made
		reg("b/new", "n", 0o644),
		reg(".wh.d", "", 0o644), // deleted, then made again: opaque
		reg("d/file", "f", 0o644),
		reg(".wh.e", "", 0o644),
		dir("e", 0o755),
		reg("f", "replaced", 0o644), // a file then its whiteout: the whiteout
		reg(".wh.f", "", 0o644),
	)
	if err != nil {
		t.Fatal(err)
	}
	isWO := func(p string) bool {
		var st unix.Stat_t
		return unix.Lstat(filepath.Join(root, p), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
	}
	exists := func(p string) bool { _, err := os.Lstat(filepath.Join(root, p)); return err == nil }
	for _, p := range []string{"a/gone", "f"} {
		if !isWO(p) {
			t.Errorf("%s is not a 0/0 character device", p)
		}
	}
	for _, p := range []string{"b/x", "b/y", "a/.wh.gone", "b/.wh..wh..opq"} {
		if exists(p) {
			t.Errorf("%s exists; want none", p)
		}
	}
	for _, p := range []string{"b", "d", "e"} {
		if v, _ := xattr(filepath.Join(root, p), "user.overlay.opaque"); v != "y" {
			t.Errorf("%s: user.overlay.opaque = %q; want y", p, v)
		}
	}
	if v, ok := xattr(filepath.Join(root, "a"), "user.overlay.opaque"); ok {
		t.Errorf("a is opaque (%q); want only its whiteout", v)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "d/file")); string(b) != "f" {
		t.Errorf("d/file = %q", b)
	}
}

func TestExtractReplaces(t *testing.T) {
	root, err := extract(t, true,
		reg("x", "first", 0o644), reg("x", "second", 0o600), // the last wins
		reg("d/in", "i", 0o644), reg("d", "now a file", 0o644), // a dir replaced by a file
		reg("f", "a file", 0o644), dir("f", 0o750), reg("f/in", "i", 0o644), // a file by a dir
		sym("s", "/etc"), dir("s", 0o755), reg("s/in", "i", 0o644), // a symlink by a dir
		dir("keep", 0o700), reg("keep/a", "a", 0o644), dir("keep", 0o711), // a dir stays, the last mode
		reg("p", "file", 0o644), reg("p/q/r", "under a former file", 0o644), // a file in the way of parents
	)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"x": "second", "d": "now a file", "f/in": "i", "s/in": "i", "keep/a": "a", "p/q/r": "under a former file"} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	if st := lstat(t, filepath.Join(root, "keep")); st.Mode != unix.S_IFDIR|0o711 {
		t.Errorf("keep: mode %o; want the last entry's, 0711", st.Mode)
	}
	if st := lstat(t, filepath.Join(root, "x")); st.Mode != unix.S_IFREG|0o600 {
		t.Errorf("x: mode %o; want 0600", st.Mode)
	}
}

// TestExtractNeverFollowsSymlinks feeds the extractor hostile entries the
// scanner would refuse, as if it had missed them: nothing may be written
// outside the layer.
func TestExtractNeverFollowsSymlinks(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "victim"), []byte("victim"), 0o644)
	cases := map[string][]tentry{
		"file through a symlink":      {sym("evil", outside), reg("evil/pwned", "x", 0o644)},
		"dir through a symlink":       {sym("evil", outside), dir("evil/pwned", 0o755)},
		"deep through a symlink":      {dir("a", 0o755), sym("a/evil", outside), reg("a/evil/pwned/deeper", "x", 0o644)},
		"whiteout through a symlink":  {sym("evil", outside), reg("evil/.wh.victim", "", 0o644)},
		"opaque through a symlink":    {sym("evil", outside), reg("evil/.wh..wh..opq", "", 0o644)},
		"hard link through a symlink": {sym("evil", outside), hard("h", "evil/victim")},
		"symlink made into a symlink": {sym("evil", outside), sym("evil/pwned", "/x")},
		"relative symlink":            {sym("up", "../.."), reg("up/pwned", "x", 0o644)},
		"the root replaced":           {reg(".", "x", 0o644)},
		"whiteout of the parent":      {reg(".wh...", "", 0o644)},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			root, err := extract(t, false, entries...)
			var h *errHostile
			if !errors.As(err, &h) {
				t.Errorf("err = %v; want it refused as hostile", err)
			}
			ents, _ := os.ReadDir(outside)
			if len(ents) != 1 {
				t.Errorf("%s holds %d entries; want only victim", outside, len(ents))
			}
			if b, _ := os.ReadFile(filepath.Join(outside, "victim")); string(b) != "victim" {
				t.Errorf("victim = %q", b)
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(filepath.Dir(root)), "pwned")); err == nil {
				t.Errorf("pwned was written above the layer")
			}
		})
	}
}

// TestRemoveAll removes a layer with read-only and unreadable directories,
// as the store does with a layer no image uses.
func TestRemoveAll(t *testing.T) {
	root, err := extract(t, true, dir("ro", 0o555), dir("ro/none", 0), reg("ro/f", "f", 0o444),
		dir("ro/x", 0o111), reg("ro/x/deep", "d", 0o000))
	if err != nil {
		t.Fatal(err)
	}
	// More entries than one getdents batch.
	for i := range 300 {
		os.WriteFile(filepath.Join(root, strings.Repeat("n", 100)+string(rune('a'+i%26))+hex.EncodeToString([]byte{byte(i)})), nil, 0o644)
	}
	if err := removeAll(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(root); !os.IsNotExist(err) {
		t.Errorf("%s is still there: %v", root, err)
	}
	if err := removeAll(root); err != nil {
		t.Errorf("removeAll of a missing path: %v", err)
	}
}

// TestZstdLayer unpacks a layer compressed by the zstd command at its
// strong settings: --long=27 on a stream of unknown size declares a 128 MiB
// window, above the 8 MiB klauspost's decoder takes by default.
func TestZstdLayer(t *testing.T) {
	zstdCmd, err := exec.LookPath("zstd")
	if err != nil {
		t.Skip("needs the zstd command")
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	data := bytes.Repeat([]byte("a layer's file "), 1000)
	tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
	tw.Write(data)
	tw.Close()
	cmd := exec.Command(zstdCmd, "-q", "-c", "-19", "--long=27")
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	compressed, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layer")
	os.Mkdir(dir, 0o700)
	diffID := "sha256:" + sha256hex(buf.Bytes())
	b := blob{open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(compressed)), nil }}
	if err := unpackLayer("test", dir, b, diffID); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "f")); !bytes.Equal(got, data) {
		t.Errorf("f has %d bytes; want %d", len(got), len(data))
	}
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
