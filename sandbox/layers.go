package sandbox

import (
	"path"
	"strings"

	"github.com/warden-sandbox/warden/sandbox/mount"
	"github.com/warden-sandbox/warden/userns"
)

// RootFS is a jail root made of directories instead of the host's view: a
// --rootfs DIR (one layer) or an image's unpacked layers. The jail sees
// them through overlayfs with a tmpfs upper, so it can write; the
// directories never change.
type RootFS struct {
	// Layers are host directories, newest first (overlayfs lowerdir order).
	Layers []string
	// Source names it for messages and the report ("--rootfs /srv/root",
	// "image busybox:latest sha256:...").
	Source string
}

// RunAs is a uid and gid inside the jail the command runs as, other than
// the one the ID map makes of the caller (an image's config.User).
type RunAs struct {
	UID, GID int
	Source   string // for messages: "image busybox user 1000"
}

// OverlayPlan is one overlay of a plan, in the order of the overlay ops: the
// jail's init sends the tmpfs holding its upper layer to warden, which
// reports what the command wrote there (Result.Overlays).
type OverlayPlan struct {
	Target string   // where the jail sees it
	Source string   // what the user named: "--overlay /src/proj", an image, a rootfs
	Lowers []string // host directories, newest first
	// Keep is where the upper layer is saved after the run ("": nowhere).
	Keep string
	// Made are paths, relative to Target, that warden itself creates in
	// the overlay as mount points for other ops (and their parents): not
	// the command's writes.
	Made map[string]bool
}

// overlayOps turns --overlay entries into ops (after the binds of the same
// targets, which they replace).
func overlayOps(o Options, size string) ([]mount.Op, error) {
	var ops []mount.Op
	for _, m := range o.Overlays {
		if !path.IsAbs(m.Src) || !path.IsAbs(m.Dst) {
			return nil, Usagef("%s %s: the directory and the target must be absolute paths", m.Origin, m.Src)
		}
		if path.Clean(m.Dst) == "/" {
			return nil, Usagef("%s %s: to replace the jail's root, use --rootfs DIR", m.Origin, m.Src)
		}
		ops = append(ops, mount.Op{Kind: mount.Overlay, Lowers: []string{path.Clean(m.Src)}, Target: path.Clean(m.Dst), Data: size})
	}
	return ops, nil
}

// rootMounts is the view of a jail whose root is o.Root: the root overlay,
// then warden's own /proc, /sys, /dev and /tmp; nothing of the host's.
func rootMounts(o Options, h *Host, size string) []mount.Op {
	root := mount.Op{Kind: mount.Overlay, Lowers: o.Root.Layers, Target: "/", Data: size}
	return append([]mount.Op{root}, ownMounts(h, size)...)
}

// rootUserPaths keeps, of the options' own paths, what a jail with its own
// root shows of the host: only what was named on the command line (--ro,
// --rw), and the jail's own directories (tmpfs, caches). A policy's view
// of the host is for jails that see the host.
func rootUserPaths(o Options) Options {
	flagOnly := func(ms []PathMap) []PathMap {
		var out []PathMap
		for _, m := range ms {
			if strings.HasPrefix(m.Origin, "--") {
				out = append(out, m)
			}
		}
		return out
	}
	o.RO, o.RW = flagOnly(o.RO), flagOnly(o.RW)
	var mounts []MountSpec
	for _, m := range o.Mounts {
		if m.Type == "tmpfs" {
			mounts = append(mounts, m)
		}
	}
	o.Mounts = mounts
	return o
}

// planOverlays describes the overlay ops of ops for the parent, with the
// mount points other ops make in each.
func planOverlays(ops []mount.Op, o Options) []OverlayPlan {
	var out []OverlayPlan
	for i, op := range ops {
		if op.Kind != mount.Overlay {
			continue
		}
		ov := OverlayPlan{Target: op.Target, Lowers: op.Lowers, Keep: o.OverlayKeep, Made: map[string]bool{}}
		if op.Target == "/" && o.Root != nil {
			ov.Source = o.Root.Source
		} else {
			ov.Source = "--overlay " + op.Lowers[0]
		}
		for _, later := range ops[i+1:] {
			rel, ok := below(later.Target, op.Target)
			if !ok || rel == "/" || later.Kind == mount.Hide || later.Kind == mount.Remount {
				continue
			}
			for p := rel; p != "/" && p != "."; p = path.Dir(p) {
				ov.Made[p] = true
			}
		}
		out = append(out, ov)
	}
	return out
}

// below returns p relative to dir ("/x/y"), and whether p is dir or below it.
func below(p, dir string) (string, bool) {
	p, dir = path.Clean(p), path.Clean(dir)
	switch {
	case dir == "/":
		return p, true
	case p == dir:
		return "/", true
	case strings.HasPrefix(p, dir+"/"):
		return p[len(dir):], true
	}
	return "", false
}

// covers says whether id is mapped by one of maps.
func covers(maps []userns.IDMap, id int) bool {
	for _, m := range maps {
		if id >= m.Inside && id < m.Inside+m.Count {
			return true
		}
	}
	return false
}

// checkKeep refuses --overlay-keep DIR where it cannot work: no overlay or
// several (one DIR holds one upper layer), or DIR holding files already.
func checkKeep(dir string, overlays int, h *Host) error {
	if overlays != 1 {
		return Usagef("--overlay-keep %s: keeps the upper layer of exactly one overlay (--overlay, --rootfs or --image), and this run has %d", dir, overlays)
	}
	if !path.IsAbs(dir) {
		return Usagef("--overlay-keep %s: must be an absolute path", dir)
	}
	if fi, err := h.Lstat(dir); err == nil && !fi.IsDir() {
		return Usagef("--overlay-keep %s: exists and is not a directory; name a new or empty directory", dir)
	}
	return nil
}
