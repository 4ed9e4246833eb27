package image_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox/image"
	"github.com/warden-sandbox/warden/sandbox/image/imagetest"
)

func TestImportTwoLayers(t *testing.T) {
	for _, format := range allFormats {
		t.Run(format, func(t *testing.T) {
			s := openStore(t)
			ref := build(t, format, "example.org/two:1", twoCfg, layer1, layer2)
			img, err := s.Import(ref, "")
			if err != nil {
				t.Fatal(err)
			}
			checkTwoLayers(t, s, img)
			if img.Name != "example.org/two:1" {
				t.Errorf("Name = %q; want the name the %s image carries, example.org/two:1", img.Name, format)
			}
			if diff := cmp.Diff(twoCfg, img.Config); diff != "" {
				t.Errorf("Config (-want +got):\n%s", diff)
			}
			if got := readDirNames(t, filepath.Join(s.Root(), "tmp")); len(got) != 0 {
				t.Errorf("tmp/ after the import = %v; want it empty", got)
			}
		})
	}
}

// checkTwoLayers checks what Import made of layer1 and layer2.
func checkTwoLayers(t *testing.T, s *image.Store, img *image.Image) {
	t.Helper()
	if !strings.HasPrefix(img.ID, "sha256:") || len(img.ID) != 71 {
		t.Errorf("ID = %q; want sha256:<64 hex>", img.ID)
	}
	if len(img.Layers) != 2 {
		t.Fatalf("Layers = %v; want 2", img.Layers)
	}
	top, base := img.Layers[0], img.Layers[1]
	for _, l := range img.Layers {
		if filepath.Dir(l) != filepath.Join(s.Root(), "layers", "sha256") {
			t.Errorf("layer %s is not in %s/layers/sha256", l, s.Root())
		}
	}
	// Newest first: the top layer has the whiteout and the opaque dir.
	if !isWhiteout(filepath.Join(top, "etc/gone")) {
		t.Errorf("%s/etc/gone is not a 0/0 char device (the whiteout of layer 2)", top)
	}
	if got := readFile(t, filepath.Join(base, "etc/gone")); got != "x" {
		t.Errorf("layer 1 etc/gone = %q; want x", got)
	}
	if got := readFile(t, filepath.Join(top, "etc/keep")); got != "2" {
		t.Errorf("layer 2 etc/keep = %q; want 2", got)
	}
	if got := readFile(t, filepath.Join(base, "etc/keep")); got != "1" {
		t.Errorf("layer 1 etc/keep = %q; want 1", got)
	}
	buf := make([]byte, 16)
	n, err := unix.Lgetxattr(filepath.Join(top, "var/cache"), "user.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("layer 2 var/cache: user.overlay.opaque = %q, %v; want y", buf[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(base, "var/cache"), "user.overlay.opaque", buf); err == nil {
		t.Errorf("layer 1 var/cache is opaque; want only layer 2's")
	}
	if got := readFile(t, filepath.Join(top, "var/cache/new")); got != "new" {
		t.Errorf("layer 2 var/cache/new = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(base, "dev/null")); !os.IsNotExist(err) {
		t.Errorf("layer 1 dev/null: %v; want device nodes skipped", err)
	}
	if l, err := os.Readlink(filepath.Join(base, "etc/abs")); err != nil || l != "/etc/passwd" {
		t.Errorf("layer 1 etc/abs -> %q, %v; want the image's own absolute symlink", l, err)
	}
	fi, err := os.Stat(filepath.Join(base, "usr/bin/tool"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("usr/bin/tool: %v, %v; want mode 0755", fi, err)
	}
	// Every file is the caller's; the image's owner 1000 is in the xattr.
	owned := filepath.Join(base, "etc/owned")
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Getuid() {
		t.Errorf("usr/bin/tool is owned by %d; want the caller, %d", st.Uid, os.Getuid())
	}
	if n, err := unix.Lgetxattr(owned, "user.rootlesscontainers", buf); err != nil || n == 0 {
		t.Errorf("etc/owned (uid 1000 in the image) has no user.rootlesscontainers xattr: %v", err)
	}
	// security.* and trusted.* are dropped, whoever imports; user.* kept.
	xf := filepath.Join(base, "etc/xattrs")
	if n, err := unix.Lgetxattr(xf, "user.keep", buf); err != nil || string(buf[:n]) != "kept" {
		t.Errorf("etc/xattrs: user.keep = %q, %v; want kept", buf[:n], err)
	}
	for _, x := range []string{"security.capability", "trusted.overlay.opaque"} {
		if _, err := unix.Lgetxattr(xf, x, buf); err == nil {
			t.Errorf("etc/xattrs has %s; want it dropped", x)
		}
	}
	if img.Size <= 0 {
		t.Errorf("Size = %d; want the bytes its layers take", img.Size)
	}
	if time.Since(img.Created) > time.Minute || time.Until(img.Created) > time.Second {
		t.Errorf("Created = %v; want about now", img.Created)
	}
}

func TestResolveTwiceUnpacksOnce(t *testing.T) {
	for _, format := range []string{imagetest.OCI, imagetest.Docker} {
		t.Run(format, func(t *testing.T) {
			s := openStore(t)
			ref := build(t, format, "two", twoCfg, layer1, layer2)
			img, unpacked, err := s.Resolve(ref)
			if err != nil || !unpacked {
				t.Fatalf("first Resolve: unpacked %v, %v; want unpacked", unpacked, err)
			}
			before := layerStats(t, img.Layers)
			t0 := time.Now()
			img2, unpacked, err := s.Resolve(ref)
			t.Logf("warm Resolve of the %s path: %v", format, time.Since(t0))
			if err != nil || unpacked {
				t.Fatalf("second Resolve: unpacked %v, %v; want nothing unpacked", unpacked, err)
			}
			if img2.ID != img.ID || !cmp.Equal(img2.Layers, img.Layers) {
				t.Errorf("second Resolve = %s %v; want %s %v", img2.ID, img2.Layers, img.ID, img.Layers)
			}
			if diff := cmp.Diff(before, layerStats(t, img.Layers)); diff != "" {
				t.Errorf("layer dirs changed (inode, mtime) (-before +after):\n%s", diff)
			}
		})
	}
}

func layerStats(t *testing.T, dirs []string) []string {
	var out []string
	for _, d := range dirs {
		var st unix.Stat_t
		if err := unix.Lstat(d, &st); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s inode %d mtime %d.%09d", d, st.Ino, st.Mtim.Sec, st.Mtim.Nsec))
	}
	return out
}

func TestResolveByNameAndID(t *testing.T) {
	s := openStore(t)
	ref := build(t, imagetest.OCI, "docker.io/library/two:1", twoCfg, layer1, layer2)
	img, err := s.Import(ref, "")
	if err != nil {
		t.Fatal(err)
	}
	if img.Name != "two:1" {
		t.Errorf("Name = %q; want docker.io/library/ dropped: two:1", img.Name)
	}
	hex := strings.TrimPrefix(img.ID, "sha256:")
	for _, r := range []string{"two:1", "docker.io/library/two:1", img.ID, hex, hex[:5], "sha256:" + hex[:12]} {
		got, unpacked, err := s.Resolve(r)
		if err != nil {
			t.Errorf("Resolve(%q): %v", r, err)
			continue
		}
		if got.ID != img.ID || unpacked || !cmp.Equal(got.Layers, img.Layers) || got.Name != "two:1" {
			t.Errorf("Resolve(%q) = %s %q %v, unpacked %v; want %s two:1 %v", r, got.ID, got.Name, got.Layers, unpacked, img.ID, img.Layers)
		}
	}
	// A name given at import; a tag-less name means :latest.
	if _, err := s.Import(ref, "mine"); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.Resolve("mine:latest"); err != nil || got.ID != img.ID {
		t.Errorf("Resolve(mine:latest) = %v, %v; want %s", got, err, img.ID)
	}
	for _, r := range []string{"nope", "two:2", "ffffffffff", "./nope.tar", "/nonexistent/dir"} {
		if _, _, err := s.Resolve(r); kindOf(err) != image.NotFound {
			t.Errorf("Resolve(%q) = %v; want a NotFound error", r, err)
		}
	}
	if _, err := s.Import(ref, "./bad"); kindOf(err) != image.BadName {
		t.Errorf(`Import(ref, "./bad") = %v; want a BadName error`, err)
	}
}

func TestListAndRemoveCollectLayers(t *testing.T) {
	s := openStore(t)
	shared := imagetest.Files(map[string]string{"shared": "both images have this layer"})
	onlyA := imagetest.Files(map[string]string{"a": "only image a"})
	onlyB := imagetest.Files(map[string]string{"b": "only image b"})
	a, err := s.Import(build(t, imagetest.OCI, "a:1", image.Config{}, shared, onlyA), "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Import(build(t, imagetest.Docker, "b:1", image.Config{}, shared, onlyB), "")
	if err != nil {
		t.Fatal(err)
	}
	if a.Layers[1] != b.Layers[1] {
		t.Fatalf("the shared layer is stored twice: %s, %s", a.Layers[1], b.Layers[1])
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, img := range list {
		names = append(names, img.Name+" "+img.ID)
	}
	if want := []string{"a:1 " + a.ID, "b:1 " + b.ID}; !cmp.Equal(names, want) {
		t.Errorf("List = %v; want %v", names, want)
	}
	if err := s.Remove("a:1"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir  string
		want bool
	}{{a.Layers[0], false}, {a.Layers[1], true}, {b.Layers[0], true}} {
		if _, err := os.Lstat(c.dir); (err == nil) != c.want {
			t.Errorf("after Remove(a): %s exists = %v; want %v", c.dir, err == nil, c.want)
		}
	}
	if _, _, err := s.Resolve("a:1"); kindOf(err) != image.NotFound {
		t.Errorf("Resolve(a) after Remove = %v; want NotFound", err)
	}
	if got, _, err := s.Resolve("b:1"); err != nil || got.ID != b.ID {
		t.Errorf("Resolve(b) after Remove(a) = %v, %v", got, err)
	}
	if err := s.Remove(strings.TrimPrefix(b.ID, "sha256:")[:8]); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"layers/sha256", "images", "tmp"} {
		if got := readDirNames(t, filepath.Join(s.Root(), d)); len(got) != 0 {
			t.Errorf("after removing every image, %s holds %v", d, got)
		}
	}
	if err := s.Remove("a:1"); kindOf(err) != image.NotFound {
		t.Errorf("Remove of a removed image = %v; want NotFound", err)
	}
}

func TestConcurrentImports(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	ref := build(t, imagetest.OCI, "two", twoCfg, layer1, layer2)
	const n = 4
	var wg sync.WaitGroup
	ids := make([]string, n)
	unpacked := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := image.Open(root)
			if err != nil {
				errs[i] = err
				return
			}
			img, u, err := s.Resolve(ref)
			if err == nil {
				ids[i], unpacked[i] = img.ID, u
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	count := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("import %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Errorf("import %d: ID %s; want %s", i, ids[i], ids[0])
		}
		if unpacked[i] {
			count++
		}
	}
	if count != 1 {
		t.Errorf("%d of %d concurrent imports unpacked layers; want exactly 1", count, n)
	}
}

func TestBusyboxImage(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skipf("needs /bin/busybox (Debian's busybox-static, scripts/setup.sh): %v", err)
	}
	for _, format := range []string{imagetest.OCI, imagetest.Docker} {
		t.Run(format, func(t *testing.T) {
			ref := refPath(t, format, "busybox")
			if err := imagetest.Busybox(ref, format); err != nil {
				t.Fatal(err)
			}
			s := openStore(t)
			t0 := time.Now()
			img, unpacked, err := s.Resolve(ref)
			t.Logf("import of the %s busybox image: %v", format, time.Since(t0))
			if err != nil || !unpacked {
				t.Fatalf("Resolve: unpacked %v, %v", unpacked, err)
			}
			t0 = time.Now()
			if _, unpacked, err := s.Resolve(ref); err != nil || unpacked {
				t.Fatalf("warm Resolve of the path: unpacked %v, %v", unpacked, err)
			}
			t.Logf("warm Resolve of the %s busybox path: %v", format, time.Since(t0))
			t0 = time.Now()
			if _, _, err := s.Resolve("busybox"); err != nil {
				t.Fatalf("Resolve(busybox): %v", err)
			}
			t.Logf("Resolve of the name busybox: %v", time.Since(t0))
			if img.Name != "busybox:latest" || len(img.Layers) != 2 {
				t.Fatalf("got %q with %d layers; want busybox:latest with 2", img.Name, len(img.Layers))
			}
			if !isWhiteout(filepath.Join(img.Layers[0], imagetest.BusyboxGone)) {
				t.Errorf("layer 2 has no whiteout at %s", imagetest.BusyboxGone)
			}
			for _, a := range []string{"sh", "[", "true"} {
				if l, err := os.Readlink(filepath.Join(img.Layers[1], "bin", a)); err != nil || l != "busybox" {
					t.Errorf("bin/%s -> %q, %v; want busybox", a, l, err)
				}
			}
			fi, err := os.Stat(filepath.Join(img.Layers[1], "tmp"))
			if err != nil || fi.Mode().Perm() != 0o777 || fi.Mode()&os.ModeSticky == 0 {
				t.Errorf("tmp: %v, %v; want 1777", fi.Mode(), err)
			}
			if img.Config.Cmd[0] != "/bin/sh" {
				t.Errorf("Cmd = %v", img.Config.Cmd)
			}
		})
	}
}
