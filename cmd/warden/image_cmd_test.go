//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/sandbox/image"
	"github.com/warden-sandbox/warden/sandbox/image/imagetest"
)

// wardenImage runs the CLI as main does and returns its exit status, stdout
// and stderr.
func wardenImage(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestImageImportLsRm(t *testing.T) {
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	base := imagetest.Files(map[string]string{"etc/os-release": "ID=test\n"})
	top := imagetest.Layer{imagetest.Dir("etc"), imagetest.Whiteout("etc/os-release")}
	cfg := image.Config{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/bin"}}
	oci := filepath.Join(t.TempDir(), "layout")
	if err := imagetest.BuildNamed(oci, imagetest.OCI, "tools:1", cfg, base, top); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "saved.tar")
	if err := imagetest.BuildNamed(tarball, imagetest.Docker, "docker.io/library/other:2", image.Config{Cmd: []string{"true"}}, base); err != nil {
		t.Fatal(err)
	}

	code, out, errs := wardenImage(t, "image", "import", oci)
	idRE := regexp.MustCompile(`^sha256:[0-9a-f]{64} tools:1\n$`)
	if code != 0 || !idRE.MatchString(out) {
		t.Fatalf("image import %s = %d, %q, %q; want 0 and \"ID tools:1\"", oci, code, out, errs)
	}
	id := strings.Fields(out)[0]
	if code, out, errs = wardenImage(t, "image", "import", tarball, "--name", "renamed"); code != 0 || !strings.HasSuffix(out, " renamed:latest\n") {
		t.Fatalf("image import --name = %d, %q, %q", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(data, "warden", "layers", "sha256")); err != nil {
		t.Errorf("the store is not in $XDG_DATA_HOME/warden: %v", err)
	}

	code, out, _ = wardenImage(t, "image", "ls")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "NAME ID LAYERS SIZE IMPORTED" {
		t.Fatalf("image ls = %d:\n%s\nwant a header and 2 images", code, out)
	}
	row := regexp.MustCompile(`^(tools:1|renamed:latest) +[0-9a-f]{12} +[12] +[0-9.]+[BKMG] +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`)
	for _, l := range lines[1:] {
		if !row.MatchString(l) {
			t.Errorf("image ls row %q; want NAME, 12-hex ID, layers, size, time", l)
		}
	}
	if !strings.Contains(out, "tools:1 ") || !strings.Contains(out, id[7:19]) {
		t.Errorf("image ls lacks tools:1 %s:\n%s", id[7:19], out)
	}

	code, out, _ = wardenImage(t, "image", "ls", "--json")
	var list []struct {
		Name   string   `json:"name"`
		ID     string   `json:"id"`
		Layers []string `json:"layers"`
		Size   int64    `json:"size"`
		Config struct {
			Cmd []string `json:"cmd"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) != 2 {
		t.Fatalf("image ls --json = %d, %v:\n%s", code, err, out)
	}
	for _, img := range list {
		if img.Name == "tools:1" && (img.ID != id || len(img.Layers) != 2 || img.Config.Cmd[0] != "/bin/sh" || img.Size <= 0) {
			t.Errorf("image ls --json: tools:1 = %+v", img)
		}
	}

	if code, out, errs = wardenImage(t, "image", "rm", "tools:1", id[7:15]+"ffff", "renamed"); code != exitWarden {
		t.Errorf("image rm with one unknown ID = %d; want %d", code, exitWarden)
	}
	if out != "tools:1\nrenamed\n" {
		t.Errorf("image rm printed %q; want the two removed", out)
	}
	if n := strings.Count(errs, "\n"); n != 1 || !strings.HasPrefix(errs, "warden: error: image "+id[7:15]+"ffff: ") {
		t.Errorf("image rm of an unknown ID: stderr %q; want one error line naming it", errs)
	}
	if _, out, _ = wardenImage(t, "image", "ls"); strings.TrimSpace(out) != "NAME  ID  LAYERS  SIZE  IMPORTED" {
		t.Errorf("image ls after rm:\n%s", out)
	}
	if ents, _ := os.ReadDir(filepath.Join(data, "warden", "layers", "sha256")); len(ents) != 0 {
		t.Errorf("layers left after removing every image: %v", ents)
	}
}

func TestImageErrorsAreOneLine(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	notImage := filepath.Join(t.TempDir(), "x.tar")
	os.WriteFile(notImage, nil, 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"image", "import", notImage}, "warden: error: image " + notImage + `: neither an OCI image layout (no index.json) nor a docker-save tarball (no manifest.json); give a directory written by "podman save --format oci-dir"`},
		{[]string{"image", "import", filepath.Join(t.TempDir(), "missing")}, "no such file or directory"},
		{[]string{"image", "rm", "nothing"}, "warden: error: image nothing: no such file, and no image of this name or ID"},
		{[]string{"image", "import"}, "warden: error: usage: warden image import REF [--name NAME]"},
		{[]string{"image", "frob"}, `warden: error: image: unknown subcommand "frob"`},
	} {
		code, out, errs := wardenImage(t, c.args...)
		first, _, _ := strings.Cut(errs, "\n")
		if code != exitWarden || out != "" || !strings.Contains(first, c.want) {
			t.Errorf("%v = %d, %q, %q; want %d and an error line with %q", c.args, code, out, errs, exitWarden, c.want)
		}
		if strings.Count(errs, "warden: error:") != 1 {
			t.Errorf("%v: stderr %q; want one error line", c.args, errs)
		}
	}
}

func TestImageHelp(t *testing.T) {
	for _, args := range [][]string{{"help", "image"}, {"image", "--help"}, {"image", "help"}, {"image", "ls", "--help"}} {
		code, out, errs := wardenImage(t, args...)
		if code != 0 || !strings.HasPrefix(out, "Usage:\n  warden image import REF") || errs != "" {
			t.Errorf("%v = %d, %q, %q; want the image usage on stdout", args, code, out, errs)
		}
	}
	if code, _, errs := wardenImage(t, "image"); code != exitWarden || !strings.Contains(errs, "warden image ls") {
		t.Errorf("image without a subcommand = %d, %q; want the usage on stderr and %d", code, errs, exitWarden)
	}
	if _, out, _ := wardenImage(t, "help"); !strings.Contains(out, "warden image import|ls|rm") {
		t.Errorf("warden help does not list the image command:\n%s", out)
	}
}

// TestImageRmInUse: an image a running jail uses (image.Store.Use) is not
// removed, with one line that says so; once released, it is.
func TestImageRmInUse(t *testing.T) {
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	oci := filepath.Join(t.TempDir(), "layout")
	if err := imagetest.BuildNamed(oci, imagetest.OCI, "busybox:latest", image.Config{Cmd: []string{"/bin/sh"}},
		imagetest.Files(map[string]string{"etc/os-release": "ID=test\n"})); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := wardenImage(t, "image", "import", oci); code != 0 {
		t.Fatalf("image import = %d, %q", code, errs)
	}
	s, err := image.Open(filepath.Join(data, "warden"))
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := s.Resolve("busybox")
	if err != nil {
		t.Fatal(err)
	}
	release, err := s.Use(img)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := wardenImage(t, "image", "rm", "busybox")
	if want := "warden: error: image busybox:latest is in use by a running jail; stop it first (warden ls)\n"; code != exitWarden || out != "" || errs != want {
		t.Errorf("image rm of an image in use = %d, %q, %q; want %d and %q", code, out, errs, exitWarden, want)
	}
	release()
	if code, out, errs := wardenImage(t, "image", "rm", "busybox"); code != 0 || out != "busybox\n" {
		t.Errorf("image rm after release = %d, %q, %q; want it removed", code, out, errs)
	}
}
