package sandbox

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/sandbox/mount"
)

// TestOverlayReplacesBind: --overlay of the project replaces the policy's
// read-write bind of it, so the host directory is never writable.
func TestOverlayReplacesBind(t *testing.T) {
	h := fakeHost("/home/alice/src")
	o := policyOptions(t, "default", h)
	o.Overlays = []PathMap{{Src: "/home/alice/src", Dst: "/home/alice/src", Origin: "--overlay"}}
	p, _, err := Resolve(o, h)
	if err != nil {
		t.Fatal(err)
	}
	var at []mount.Op
	for _, op := range p.Mounts {
		if op.Target == "/home/alice/src" {
			at = append(at, op)
		}
	}
	if len(at) != 1 || at[0].Kind != mount.Overlay || strings.Join(at[0].Lowers, ":") != "/home/alice/src" {
		t.Fatalf("ops at the project: %v, want the overlay alone", at)
	}
	if len(p.Overlays) != 1 || p.Overlays[0].Target != "/home/alice/src" || p.Overlays[0].Source != "--overlay /home/alice/src" {
		t.Errorf("plan overlays: %+v", p.Overlays)
	}
	if !strings.Contains(at[0].Data, "size=") {
		t.Errorf("the upper layer's tmpfs is uncapped: %q", at[0].Data)
	}
}

// TestRootFSView: with its own root, a jail shows nothing of the host's
// file system but what the command line names, and warden's own /proc,
// /dev and /tmp.
func TestRootFSView(t *testing.T) {
	h := fakeHost("/home/alice/src")
	o := policyOptions(t, "default", h)
	o.Root = &RootFS{Layers: []string{"/srv/l2", "/srv/l1"}, Source: "image test"}
	o.RO = append(o.RO, PathMap{Src: "/srv/data", Dst: "/data", Origin: "--ro"})
	p, _, err := Resolve(o, h)
	if err != nil {
		t.Fatal(err)
	}
	if p.Mounts[0].Kind != mount.Overlay || p.Mounts[0].Target != "/" || strings.Join(p.Mounts[0].Lowers, ":") != "/srv/l2:/srv/l1" {
		t.Fatalf("first op %v, want the root overlay", p.Mounts[0])
	}
	for _, op := range p.Mounts {
		if op.Kind == mount.Bind && op.Source != "/srv/data" {
			t.Errorf("host path shown in a jail with its own root: %v", op)
		}
		if op.Target == "/home/alice" || op.Target == "/usr" {
			t.Errorf("host view op in a jail with its own root: %v", op)
		}
	}
	if p.Cwd != "/" {
		t.Errorf("cwd %q, want / (the host's directory is not in the root)", p.Cwd)
	}
	ov := p.Overlays[0]
	for _, want := range []string{"/proc", "/dev", "/tmp", "/data", "/sys"} {
		if !ov.Made[want] {
			t.Errorf("mount point %s is not excluded from the write-set: %v", want, ov.Made)
		}
	}
	if ov.Made["/"] || ov.Made["/proc/sys"] {
		t.Errorf("Made has / or a remount's target: %v", ov.Made)
	}
	env := strings.Join(p.Env, " ")
	if !strings.Contains(env, "HOME=/ ") && !strings.HasSuffix(env, "HOME=/") {
		t.Errorf("HOME in a rootfs jail: %s", env)
	}
}

// TestOverlayKeep: --overlay-keep needs exactly one overlay.
func TestOverlayKeep(t *testing.T) {
	h := fakeHost("/home/alice/src")
	o := policyOptions(t, "default", h)
	o.OverlayKeep = "/tmp/build/keep"
	if _, _, err := Resolve(o, h); err == nil || !strings.Contains(err.Error(), "exactly one overlay") {
		t.Errorf("keep without an overlay: %v", err)
	}
	o.Overlays = []PathMap{{Src: "/srv/data", Dst: "/srv/data", Origin: "--overlay"}, {Src: "/opt", Dst: "/opt", Origin: "--overlay"}}
	if _, _, err := Resolve(o, h); err == nil || !strings.Contains(err.Error(), "has 2") {
		t.Errorf("keep with two overlays: %v", err)
	}
	o.Overlays = o.Overlays[:1]
	p, _, err := Resolve(o, h)
	if err != nil {
		t.Fatal(err)
	}
	if p.Overlays[0].Keep != "/tmp/build/keep" {
		t.Errorf("keep: %+v", p.Overlays[0])
	}
	o.Overlays = []PathMap{{Src: "/srv/data", Dst: "/", Origin: "--overlay"}}
	if _, _, err := Resolve(o, h); err == nil || !strings.Contains(err.Error(), "--rootfs") {
		t.Errorf("--overlay onto /: %v", err)
	}
}

func TestKernelAtLeast(t *testing.T) {
	for _, tc := range []struct {
		rel  string
		want bool
	}{{"6.18.44-amd64", true}, {"6.13.0", true}, {"6.12.9-1-lts", false}, {"5.15.0-91-generic", false}, {"7.0", true}, {"garbage", true}} {
		if got := kernelAtLeast(tc.rel, [2]int{6, 13}); got != tc.want {
			t.Errorf("kernelAtLeast(%q) = %v", tc.rel, got)
		}
	}
}

// TestCheckOverlays: an old kernel and a lower with mounts below it are
// refused before anything is made, naming the cause and the mounts.
func TestCheckOverlays(t *testing.T) {
	p := &Plan{Overlays: []OverlayPlan{{Source: "--overlay /srv", Lowers: []string{"/srv"}}}}
	none := func(string) ([]string, error) { return nil, nil }
	if err := checkOverlays(p, "6.18.1", none); err != nil {
		t.Errorf("plain overlay: %v", err)
	}
	if err := checkOverlays(p, "6.6.1", none); err == nil || !strings.Contains(err.Error(), "need Linux 6.13") {
		t.Errorf("old kernel: %v", err)
	}
	some := func(string) ([]string, error) { return []string{"/srv/a", "/srv/b", "/srv/c", "/srv/d"}, nil }
	err := checkOverlays(p, "6.18.1", some)
	if err == nil || !strings.Contains(err.Error(), "/srv/a, /srv/b, /srv/c and 1 more") || len(Diagnose(err)) != 1 {
		t.Errorf("mounts below: %v %v", err, Diagnose(err))
	}
	if err := checkOverlays(&Plan{}, "4.0", some); err != nil {
		t.Errorf("no overlay: %v", err)
	}
}

// TestRootFSNoHostWarnings: a jail with its own root started from /tmp or
// $HOME says nothing about showing them (it shows neither).
func TestRootFSNoHostWarnings(t *testing.T) {
	for _, cwd := range []string{"/tmp", "/home/alice"} {
		h := fakeHost(cwd)
		stat, lstat := h.Stat, h.Lstat
		sticky := func(st func(string) (fs.FileInfo, error)) func(string) (fs.FileInfo, error) {
			return func(p string) (fs.FileInfo, error) {
				if p == "/tmp" {
					return fakeInfo{"tmp", fs.ModeDir | fs.ModeSticky | 0o777}, nil
				}
				return st(p)
			}
		}
		h.Stat, h.Lstat = sticky(stat), sticky(lstat)
		eval := h.EvalSymlinks
		h.EvalSymlinks = func(p string) (string, error) {
			if p == "/tmp" {
				return p, nil
			}
			return eval(p)
		}
		_, hostWarns, err := Resolve(policyOptions(t, "default", h), h)
		if err != nil {
			t.Fatalf("from %s, the host view: %v", cwd, err)
		}
		if len(hostWarns) == 0 {
			t.Fatalf("from %s: the host view gives no warning, so the test proves nothing", cwd)
		}
		o := policyOptions(t, "default", h)
		o.Root = &RootFS{Layers: []string{"/srv/l1"}, Source: "--rootfs /srv/l1"}
		_, warns, err := Resolve(o, h)
		if err != nil {
			t.Fatal(err)
		}
		if len(warns) != 0 {
			t.Errorf("from %s, with a root of its own: %v", cwd, warns)
		}
	}
}
