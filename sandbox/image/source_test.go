package image_test

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/sandbox/image"
	"github.com/warden-sandbox/warden/sandbox/image/imagetest"
)

type member struct {
	name, link string
	typ        byte
	data       []byte
}

func writeTar(t *testing.T, file string, members []member) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, m := range members {
		h := &tar.Header{Name: m.name, Linkname: m.link, Typeflag: m.typ, Mode: 0o644, Size: int64(len(m.data))}
		if m.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(m.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func digestHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestDockerTarballLinkedLayers reads a tarball as Docker 25 writes it
// (blobs/sha256/*, with <id>/layer.tar symlinks to them) and one whose
// layer member is a hard link.
func TestDockerTarballLinkedLayers(t *testing.T) {
	var layers [][]byte
	for i, l := range []imagetest.Layer{
		imagetest.Files(map[string]string{"one": "1"}),
		imagetest.Files(map[string]string{"two": "2"}),
		imagetest.Files(map[string]string{"three": "3"}),
	} {
		b, err := l.Tar()
		if err != nil {
			t.Fatal(i, err)
		}
		layers = append(layers, b)
	}
	var diffIDs []string
	for _, l := range layers {
		diffIDs = append(diffIDs, "sha256:"+digestHex(l))
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
		"config": map[string]any{"Cmd": []string{"/bin/sh"}},
	})
	cfgName := "blobs/sha256/" + digestHex(cfg)
	manifest, _ := json.Marshal([]map[string]any{{
		"Config":   cfgName,
		"RepoTags": []string{"linked:1"},
		"Layers":   []string{"blobs/sha256/" + digestHex(layers[0]), "abc/layer.tar", "def/layer.tar"},
	}})
	ref := filepath.Join(t.TempDir(), "linked.tar")
	writeTar(t, ref, []member{
		{name: "blobs/sha256/" + digestHex(layers[0]), typ: tar.TypeReg, data: layers[0]},
		{name: "blobs/sha256/" + digestHex(layers[1]), typ: tar.TypeReg, data: layers[1]},
		{name: "blobs/sha256/" + digestHex(layers[2]), typ: tar.TypeReg, data: layers[2]},
		{name: "abc/", typ: tar.TypeDir},
		{name: "abc/layer.tar", typ: tar.TypeSymlink, link: "../blobs/sha256/" + digestHex(layers[1])},
		{name: "def/layer.tar", typ: tar.TypeLink, link: "blobs/sha256/" + digestHex(layers[2])},
		{name: cfgName, typ: tar.TypeReg, data: cfg},
		{name: "manifest.json", typ: tar.TypeReg, data: manifest},
	})
	s := openStore(t)
	img, err := s.Import(ref, "")
	if err != nil {
		t.Fatal(err)
	}
	if img.Name != "linked:1" || len(img.Layers) != 3 || img.ID != "sha256:"+digestHex(cfg) {
		t.Fatalf("imported %q %s with %d layers", img.Name, img.ID, len(img.Layers))
	}
	for i, f := range []string{"three", "two", "one"} {
		if b, err := os.ReadFile(filepath.Join(img.Layers[i], f)); err != nil || len(b) != 1 {
			t.Errorf("layer %d: %s = %q, %v", i, f, b, err)
		}
	}

	// A config whose name is not its digest is refused.
	bad := filepath.Join(t.TempDir(), "bad.tar")
	badName := "blobs/sha256/" + strings.Repeat("0", 64)
	manifest = []byte(strings.ReplaceAll(string(manifest), cfgName, badName))
	writeTar(t, bad, []member{
		{name: "blobs/sha256/" + digestHex(layers[0]), typ: tar.TypeReg, data: layers[0]},
		{name: badName, typ: tar.TypeReg, data: cfg},
		{name: "manifest.json", typ: tar.TypeReg, data: manifest},
	})
	if _, err := s.Import(bad, ""); kindOf(err) != image.Corrupt || !strings.Contains(err.Error(), "does not match its digest") {
		t.Errorf("Import of a tarball whose config is misnamed = %v; want Corrupt", err)
	}

	// A link cycle, and a missing member.
	cyc := filepath.Join(t.TempDir(), "cycle.tar")
	writeTar(t, cyc, []member{
		{name: "a", typ: tar.TypeSymlink, link: "b"},
		{name: "b", typ: tar.TypeSymlink, link: "a"},
		{name: "manifest.json", typ: tar.TypeReg, data: []byte(`[{"Config":"a","Layers":[]}]`)},
	})
	if _, err := s.Import(cyc, ""); kindOf(err) != image.BadFormat || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("Import of a tarball with a link cycle = %v; want BadFormat", err)
	}
}
