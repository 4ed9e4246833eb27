package image_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/sandbox/image"
	"github.com/warden-sandbox/warden/sandbox/image/imagetest"
)

// bigLayer has enough files (3200 of 4 KiB) that unpacking it takes a
// while (1.7 s on the 2-core VM, most of it ext4 creating small files), so
// the test can kill an import in the middle of it.
func bigLayer() imagetest.Layer {
	l := imagetest.Layer{imagetest.Dir("big")}
	content := strings.Repeat("0123456789abcdef", 256) // 4 KiB
	for d := range 16 {
		dir := fmt.Sprintf("big/d%02d", d)
		l = append(l, imagetest.Dir(dir))
		for f := range 200 {
			l = append(l, imagetest.File(fmt.Sprintf("%s/f%03d", dir, f), content))
		}
	}
	return l
}

func TestKillDuringUnpack(t *testing.T) {
	big := bigLayer()
	ref := build(t, imagetest.OCI, "big:1", image.Config{}, layer1, big)
	root := filepath.Join(t.TempDir(), "store")
	tmp := filepath.Join(root, "tmp")
	var killedIn string
	for attempt := 0; attempt < 5 && killedIn == ""; attempt++ {
		killedIn = killImport(t, root, ref)
	}
	if killedIn == "" {
		t.Fatal("the import finished every time before it could be killed")
	}
	t.Logf("killed while unpacking into %s", killedIn)
	// The kill left a half layer in tmp/, and nothing in layers/ or images/.
	if len(readDirNames(t, tmp)) == 0 {
		t.Fatal("tmp/ is empty after the kill; the test killed nothing mid-unpack")
	}
	s, err := image.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := readDirNames(t, tmp); len(got) != 0 {
		t.Errorf("after Open, tmp/ holds %v; want the leftovers removed", got)
	}
	if got := readDirNames(t, filepath.Join(root, "images")); len(got) != 0 {
		t.Errorf("images/ holds %v after a killed import", got)
	}
	// Layer 1 (small) may have been completed before the kill: whatever
	// is in layers/ must be whole.
	for _, l := range readDirNames(t, filepath.Join(root, "layers", "sha256")) {
		if _, err := os.Lstat(filepath.Join(root, "layers", "sha256", l, "big")); err == nil {
			if n := countFiles(t, filepath.Join(root, "layers", "sha256", l)); n != len(big) {
				t.Errorf("layers/%s holds %d entries; want all %d or no such layer", l, n, len(big))
			}
		}
	}
	t0 := time.Now()
	img, err := s.Import(ref, "")
	if err != nil {
		t.Fatalf("import after the kill: %v", err)
	}
	t.Logf("import of %d entries after the kill: %v", len(big), time.Since(t0))
	if n := countFiles(t, img.Layers[0]); n != len(big) {
		t.Errorf("the big layer holds %d entries; want %d", n, len(big))
	}
}

// killImport runs an import of ref into root in a child process and kills
// it with SIGKILL as soon as a layer directory in tmp/ has files. It
// returns that directory, or "" if the import ended first.
func killImport(t *testing.T, root, ref string) string {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WARDEN_IMAGE_TEST_IMPORT="+root+"\n"+ref)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tmp := filepath.Join(root, "tmp")
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Microsecond) {
		select {
		case err := <-done:
			t.Logf("the import ended before it was killed: %v", err)
			return ""
		default:
		}
		ents, _ := os.ReadDir(tmp)
		for _, e := range ents {
			dir := filepath.Join(tmp, e.Name())
			// Kill in the big layer: its directory "big" exists.
			if _, err := os.Lstat(filepath.Join(dir, "big", "d01")); err == nil {
				cmd.Process.Signal(syscall.SIGKILL)
				err := <-done
				ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
				if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Logf("the import was not killed (%v)", err)
					return ""
				}
				return dir
			}
		}
	}
	cmd.Process.Kill()
	<-done
	t.Fatal("the import did not start unpacking in 30s")
	return ""
}

func countFiles(t *testing.T, dir string) int {
	n := -1 // not the directory itself
	err := filepath.Walk(dir, func(string, os.FileInfo, error) error { n++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return n
}
