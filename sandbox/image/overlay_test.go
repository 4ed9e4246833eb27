package image_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/sandbox/image/imagetest"
)

// TestLayersMountAsOverlay stacks the layers of an import as the jail will
// (overlayfs, userxattr, in a user namespace where the caller is root) and
// reads the merged tree: the whiteout and the opaque directory must work.
func TestLayersMountAsOverlay(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skipf("needs unshare(1) (util-linux): %v", err)
	}
	if out, err := exec.Command(unshare, "-Urm", "true").CombinedOutput(); err != nil {
		t.Skipf("needs unprivileged user namespaces: unshare -Urm: %v: %s", err, out)
	}
	for _, format := range []string{imagetest.OCI, imagetest.Docker} {
		t.Run(format, func(t *testing.T) {
			s := openStore(t)
			img, err := s.Import(build(t, format, "two:1", twoCfg, layer1, layer2), "")
			if err != nil {
				t.Fatal(err)
			}
			mnt := filepath.Join(t.TempDir(), "mnt")
			os.Mkdir(mnt, 0o755)
			script := `mount -t overlay overlay -o ro,userxattr,lowerdir="$1" "$2" && cd "$2" &&
				echo "keep=$(cat etc/keep)"; ls etc; echo --; ls var/cache; echo --; ls -n usr/bin/tool etc/owned`
			out, err := exec.Command(unshare, "-Urm", "sh", "-c", script, "sh", strings.Join(img.Layers, ":"), mnt).CombinedOutput()
			if err != nil {
				t.Fatalf("mount the layers as overlay: %v\n%s", err, out)
			}
			got := string(out)
			want := "keep=2\nabs\nkeep\nowned\nxattrs\n--\nnew\n--\n"
			if !strings.HasPrefix(got, want) {
				t.Errorf("merged tree:\n%s\nwant it to start with:\n%s", got, want)
			}
			// Owned by root in the jail (the caller, mapped to 0).
			for _, l := range strings.Split(strings.TrimSpace(got[len(want):]), "\n") {
				if f := strings.Fields(l); len(f) < 4 || f[2] != "0" || f[3] != "0" {
					t.Errorf("%q: want owner 0 0 in the user namespace", l)
				}
			}
		})
	}
}
