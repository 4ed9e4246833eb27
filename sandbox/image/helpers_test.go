package image_test

import (
	"archive/tar"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox/image"
	"github.com/warden-sandbox/warden/sandbox/image/imagetest"
)

// TestMain is also the child of TestKillDuringUnpack: with
// WARDEN_IMAGE_TEST_IMPORT=ROOT\nREF it imports REF into the store at
// ROOT and exits.
func TestMain(m *testing.M) {
	if v := os.Getenv("WARDEN_IMAGE_TEST_IMPORT"); v != "" {
		root, ref, _ := strings.Cut(v, "\n")
		s, err := image.Open(root)
		if err == nil {
			_, err = s.Import(ref, "")
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var allFormats = []string{imagetest.OCI, imagetest.OCIZstd, imagetest.Docker, imagetest.DockerGz}

// refPath is where a test writes an image of format: a directory for a
// layout, a .tar file for a tarball.
func refPath(t *testing.T, format, name string) string {
	if strings.HasPrefix(format, "docker") {
		return filepath.Join(t.TempDir(), name+".tar")
	}
	return filepath.Join(t.TempDir(), name)
}

func openStore(t *testing.T) *image.Store {
	t.Helper()
	s, err := image.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func build(t *testing.T, format, name string, cfg image.Config, layers ...imagetest.Layer) string {
	t.Helper()
	ref := refPath(t, format, "img")
	if err := imagetest.BuildNamed(ref, format, name, cfg, layers...); err != nil {
		t.Fatalf("build %s image: %v", format, err)
	}
	return ref
}

// Two layers: the second deletes etc/gone (a whiteout), makes var/cache
// opaque and changes etc/keep.
var (
	layer1 = imagetest.Layer{
		imagetest.Dir("etc"),
		imagetest.File("etc/keep", "1"),
		imagetest.File("etc/gone", "x"),
		{Path: "etc/owned", Content: "by 1000", UID: 1000, GID: 1000},
		{Path: "etc/xattrs", Content: "x", Xattrs: map[string]string{"user.keep": "kept",
			"security.capability":    "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
			"trusted.overlay.opaque": "y"}},
		imagetest.Dir("var"), imagetest.Dir("var/cache"),
		imagetest.File("var/cache/old", "old"),
		imagetest.Dir("usr"), imagetest.Dir("usr/bin"),
		{Path: "usr/bin/tool", Content: "#!/bin/sh\n", Mode: 0o755},
		imagetest.Symlink("bin", "usr/bin"),
		imagetest.Symlink("etc/abs", "/etc/passwd"),
		imagetest.Dir("dev"),
		{Path: "dev/null", Type: tar.TypeChar, Major: 1, Minor: 3, Mode: 0o666},
	}
	layer2 = imagetest.Layer{
		imagetest.Dir("etc"),
		imagetest.Whiteout("etc/gone"),
		imagetest.File("etc/keep", "2"),
		imagetest.Dir("var"), imagetest.Dir("var/cache"),
		imagetest.Opaque("var/cache"),
		imagetest.File("var/cache/new", "new"),
	}
	twoCfg = image.Config{Cmd: []string{"/usr/bin/tool", "-x"}, Env: []string{"PATH=/usr/bin", "A=b"}, WorkingDir: "/etc", User: "1000:1000"}
)

// snapshot lists everything under the store (but its lock file) with its
// type, size and, for files, content, so a test can tell that an import
// that failed changed nothing.
func snapshot(t *testing.T, s *image.Store) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(s.Root(), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.Root(), p)
		if rel == "lock" {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v %d", rel, fi.Mode(), fi.Size())
		if fi.Mode().IsRegular() && !strings.HasPrefix(rel, "layers") {
			b, _ := os.ReadFile(p)
			line += " " + string(b)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func readDirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// isWhiteout says whether p is an overlayfs whiteout: a 0/0 char device.
func isWhiteout(p string) bool {
	var st unix.Stat_t
	if unix.Lstat(p, &st) != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func kindOf(err error) image.Kind {
	var ie *image.Error
	if errors.As(err, &ie) {
		return ie.Kind
	}
	return 0
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
