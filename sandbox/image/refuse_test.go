package image_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/warden-sandbox/warden/sandbox/image"
	"github.com/warden-sandbox/warden/sandbox/image/imagetest"
)

// storeWithImage is a store that holds one image already, so that a test
// can tell that a refused import changed nothing in a store with content.
func storeWithImage(t *testing.T) *image.Store {
	t.Helper()
	s := openStore(t)
	if _, err := s.Import(build(t, imagetest.OCI, "x/before:1", twoCfg, layer1, layer2), ""); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHostileLayersAreRefused(t *testing.T) {
	victims := t.TempDir() // where each hostile layer would write
	victimFile := filepath.Join(victims, "file")
	if err := os.WriteFile(victimFile, []byte("victim"), 0o644); err != nil {
		t.Fatal(err)
	}
	var passwd syscall.Stat_t
	if err := syscall.Stat("/etc/passwd", &passwd); err != nil {
		t.Fatal(err)
	}
	// The store is <tmp>/store, a layer is unpacked in store/tmp/layer-X:
	// three ".." reach the directory the store is in.
	storeParent := ""
	cases := []struct {
		name   string
		layer  func(s *image.Store) imagetest.Layer
		victim func(s *image.Store) string // must not exist afterwards
		why    string
	}{
		{"absolute path", func(*image.Store) imagetest.Layer {
			return imagetest.Layer{imagetest.Dir("etc"), imagetest.File("etc/ok", "ok"), imagetest.File(victims+"/abs", "pwned")}
		}, func(*image.Store) string { return victims + "/abs" }, "absolute path"},
		{"dotdot", func(*image.Store) imagetest.Layer {
			return imagetest.Layer{imagetest.File("ok", "ok"), imagetest.File("../../../dotdot", "pwned")}
		}, func(s *image.Store) string { return filepath.Join(storeParent, "dotdot") }, `".." component`},
		{"dotdot inside", func(*image.Store) imagetest.Layer {
			return imagetest.Layer{imagetest.Dir("a"), imagetest.File("a/../../../../inside", "pwned")}
		}, func(s *image.Store) string { return filepath.Join(storeParent, "inside") }, `".." component`},
		{"hard link to /etc/passwd", func(*image.Store) imagetest.Layer {
			return imagetest.Layer{imagetest.Dir("etc"), imagetest.Hardlink("etc/passwd", "/etc/passwd")}
		}, nil, "absolute hard link target"},
		{"hard link to a file outside", func(*image.Store) imagetest.Layer {
			return imagetest.Layer{imagetest.Hardlink("x", victimFile), imagetest.File("x", "pwned")}
		}, nil, "absolute hard link target"},
		{"hard link with dotdot", func(*image.Store) imagetest.Layer {
			return imagetest.Layer{imagetest.Hardlink("x", "../../../../victim")}
		}, nil, `hard link target with a ".." component`},
		{"symlink then write", func(*image.Store) imagetest.Layer {
			return imagetest.Layer{imagetest.File("ok", "ok"), imagetest.Symlink("evil", victims), imagetest.File("evil/pwned", "pwned")}
		}, func(*image.Store) string { return victims + "/pwned" }, `goes through the symlink "evil"`},
		{"relative symlink then write", func(*image.Store) imagetest.Layer {
			return imagetest.Layer{imagetest.Symlink("up", "../../.."), imagetest.Dir("up/deeper"), imagetest.File("up/deeper/pwned", "x")}
		}, func(*image.Store) string { return filepath.Join(storeParent, "deeper") }, `goes through the symlink "up"`},
		{"symlink then whiteout", func(*image.Store) imagetest.Layer {
			return imagetest.Layer{imagetest.Symlink("evil", victims), imagetest.Whiteout("evil/file")}
		}, nil, `goes through the symlink "evil"`},
		{"hard link to a symlink then write", func(*image.Store) imagetest.Layer {
			return imagetest.Layer{imagetest.Symlink("s", victims), imagetest.Hardlink("h", "s"), imagetest.File("h/pwned", "x")}
		}, func(*image.Store) string { return victims + "/pwned" }, `goes through the symlink "h"`},
	}
	for _, format := range []string{imagetest.OCI, imagetest.Docker} {
		for _, c := range cases {
			t.Run(format+"/"+c.name, func(t *testing.T) {
				s := storeWithImage(t)
				storeParent = filepath.Dir(s.Root())
				before := snapshot(t, s)
				ref := build(t, format, "hostile:1", image.Config{}, layer1, c.layer(s))
				_, _, err := s.Resolve(ref)
				if kindOf(err) != image.Hostile || !strings.Contains(err.Error(), c.why) {
					t.Fatalf("Resolve = %v; want a Hostile error saying %s", err, c.why)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("the error has more than one line: %q", err)
				}
				if diff := cmp.Diff(before, snapshot(t, s)); diff != "" {
					t.Errorf("the refused import changed the store (-before +after):\n%s", diff)
				}
				if c.victim != nil {
					if _, err := os.Lstat(c.victim(s)); !os.IsNotExist(err) {
						t.Errorf("%s exists (%v): the layer wrote outside the store", c.victim(s), err)
					}
				}
				if b, _ := os.ReadFile(victimFile); string(b) != "victim" {
					t.Errorf("%s now holds %q", victimFile, b)
				}
				var st syscall.Stat_t
				if syscall.Stat(victimFile, &st) != nil || st.Nlink != 1 {
					t.Errorf("%s has %d links; want 1", victimFile, st.Nlink)
				}
				if syscall.Stat("/etc/passwd", &st) != nil || st.Nlink != passwd.Nlink {
					t.Errorf("/etc/passwd has %d links; want %d", st.Nlink, passwd.Nlink)
				}
			})
		}
	}
}

func TestCorruptBlobsAreRefused(t *testing.T) {
	layer := imagetest.Layer{imagetest.File("data", strings.Repeat("corrupt-me ", 100))}
	cases := []struct {
		name, format string
		corrupt      func(t *testing.T, ref string)
		want         string
	}{
		{"oci layer blob", imagetest.OCI, func(t *testing.T, ref string) {
			flipLastByte(t, layerBlob(t, ref, 1)) // layer 0 is in the store already
		}, "does not match its digest"},
		{"oci config blob", imagetest.OCI, func(t *testing.T, ref string) {
			f := smallestJSONBlob(t, ref)
			b := []byte(readFile(t, f))
			b = bytes.Replace(b, []byte(`"linux"`), []byte(`"LINUX"`), 1)
			os.WriteFile(f, b, 0o644)
		}, "does not match its digest"},
		{"docker layer content", imagetest.Docker, func(t *testing.T, ref string) {
			b := []byte(readFile(t, ref))
			i := bytes.Index(b, []byte("corrupt-me"))
			if i < 0 {
				t.Fatal("the layer's content is not in the tarball")
			}
			b[i] = 'C'
			os.WriteFile(ref, b, 0o644)
		}, "does not match its diff_id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := storeWithImage(t)
			before := snapshot(t, s)
			ref := build(t, c.format, "corrupt:1", image.Config{}, layer1, layer)
			c.corrupt(t, ref)
			_, _, err := s.Resolve(ref)
			if kindOf(err) != image.Corrupt || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Resolve = %v; want a Corrupt error saying %q", err, c.want)
			}
			if diff := cmp.Diff(before, snapshot(t, s)); diff != "" {
				t.Errorf("the refused import changed the store (-before +after):\n%s", diff)
			}
		})
	}
}

func blobs(t *testing.T, layout string) []os.FileInfo {
	ents, err := os.ReadDir(filepath.Join(layout, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var out []os.FileInfo
	for _, e := range ents {
		fi, _ := e.Info()
		out = append(out, fi)
	}
	return out
}

// layerBlob is the blob of the layout's layer i.
func layerBlob(t *testing.T, layout string, i int) string {
	var idx struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	var m struct {
		Layers []struct{ Digest string } `json:"layers"`
	}
	blob := func(d string) string {
		return filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
	}
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(layout, "index.json"))), &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %v", err)
	}
	if err := json.Unmarshal([]byte(readFile(t, blob(idx.Manifests[0].Digest))), &m); err != nil || len(m.Layers) <= i {
		t.Fatalf("manifest: %v", err)
	}
	return blob(m.Layers[i].Digest)
}

// smallestJSONBlob is the config: the blob that mentions "rootfs".
func smallestJSONBlob(t *testing.T, layout string) string {
	for _, fi := range blobs(t, layout) {
		p := filepath.Join(layout, "blobs", "sha256", fi.Name())
		if strings.Contains(readFile(t, p), `"rootfs"`) {
			return p
		}
	}
	t.Fatal("no config blob")
	return ""
}

func flipLastByte(t *testing.T, file string) {
	b := []byte(readFile(t, file))
	b[len(b)-1] ^= 0xff
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestNotAnImage(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plainTar := func(names ...string) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, n := range names {
			tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Typeflag: tar.TypeReg})
		}
		tw.Close()
		return buf.Bytes()
	}
	os.Mkdir(filepath.Join(dir, "emptydir"), 0o755)
	cases := []struct{ ref, want string }{
		{write("files.tar", plainTar("a", "b")), `neither an OCI image layout (no index.json) nor a docker-save tarball (no manifest.json); give a directory written by "podman save --format oci-dir"`},
		{write("text.txt", []byte(strings.Repeat("not a tar file\n", 100))), "neither an OCI image layout (not a directory) nor a docker-save tarball (not a tar file"},
		{filepath.Join(dir, "emptydir"), "a directory but not an OCI image layout (no index.json)"},
		{write("x.tar.gz", []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0}), "a compressed file, not a docker-save tarball; decompress it first"},
		{write("oci-archive.tar", plainTar("oci-layout", "index.json", "blobs/sha256/x")), "an OCI archive (index.json but no manifest.json)"},
	}
	s := openStore(t)
	for _, c := range cases {
		_, _, err := s.Resolve(c.ref)
		if kindOf(err) != image.BadFormat {
			t.Errorf("Resolve(%s) = %v; want a BadFormat error", c.ref, err)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "image "+c.ref+": ") || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
			t.Errorf("Resolve(%s) = %q;\nwant one line naming the ref and saying %q", c.ref, msg, c.want)
		}
	}
}
