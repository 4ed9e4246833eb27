//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/warden-sandbox/warden/sandbox"
	"github.com/warden-sandbox/warden/sandbox/image"
	"github.com/warden-sandbox/warden/userns"
)

func absPath(p, cwd string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(cwd, p)
}

// rootOptions sets the jail's own root from --rootfs DIR or --image REF:
// the root's layers, and for an image the defaults its config gives
// (command, environment, working directory). The image store is hidden in
// every jail: a jail runs as your uid and could change the cached layers
// that later jails start from.
func rootOptions(o *runOpts, opts *sandbox.Options, h *sandbox.Host) error {
	storeRoot, storeErr := image.DefaultRoot()
	if storeErr == nil {
		opts.Hide = append(opts.Hide, storeRoot)
	}
	switch {
	case o.rootfs != "" && o.image != "":
		return sandbox.Usagef("--rootfs and --image both name the jail's root: give one")
	case o.rootfs != "":
		dir := absPath(o.rootfs, h.Cwd)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return sandbox.Usagef("--rootfs %s: not a directory; give the directory holding the root file system (bin/, etc/, ...)", o.rootfs)
		}
		opts.Root = &sandbox.RootFS{Layers: []string{dir}, Source: "--rootfs " + dir}
	case o.image != "":
		if storeErr != nil {
			return sandbox.Usagef("--image %s: no place for the image store: %v; set $XDG_DATA_HOME", o.image, storeErr)
		}
		if o.explaining {
			if _, err := os.Stat(o.image); err == nil {
				return sandbox.Usagef("--image %s: explaining changes nothing, so it does not import an image; import it first (warden image import %s) and explain with its name", o.image, o.image)
			}
		}
		st, err := image.Open(storeRoot)
		if err != nil {
			return err
		}
		img, _, err := st.Resolve(o.image)
		if err != nil {
			return err
		}
		// Held until warden exits (the jail with it): `warden image rm`
		// refuses to remove layers a running jail is built on.
		if _, err := st.Use(img); err != nil {
			return err
		}
		name := img.Name
		if name == "" {
			name = o.image
		}
		opts.Root = &sandbox.RootFS{Layers: img.Layers, Source: "image " + name + " " + img.ID}
		cfg := img.Config
		args := opts.Argv
		if len(args) == 0 {
			args = cfg.Cmd
		}
		opts.Argv = append(append([]string{}, cfg.Entrypoint...), args...)
		if len(opts.Argv) == 0 {
			return sandbox.Usagef("--image %s: the image names no command; give one: warden run --image %s -- CMD", o.image, o.image)
		}
		opts.RootEnv = cfg.Env
		if cfg.WorkingDir != "" && !o.fs.Changed("chdir") {
			opts.Chdir = cfg.WorkingDir
		}
		if cfg.User != "" && cfg.User != "0" && cfg.User != "root" && cfg.User != "0:0" {
			uid, gid, ok := imageUser(img.Layers, cfg.User)
			if !ok {
				o.rootWarnings = append(o.rootWarnings, fmt.Sprintf("image %s asks for user %q, which is not a number and not in its /etc/passwd: the command runs as the jail's root (your own uid outside)", name, cfg.User))
			} else if !o.fs.Changed("as-root") {
				// Another uid of the jail needs your subordinate ids
				// mapped (Resolve says so when there are none).
				opts.RunAs = &sandbox.RunAs{UID: uid, GID: gid, Source: "image " + name + " user " + cfg.User}
				if !o.fs.Changed("map") {
					opts.Map = userns.ModeAuto
				}
			}
		}
	default:
		return nil
	}
	// Like podman: the command of a root file system runs as its root
	// (your uid outside, no capabilities beyond the jail), unless asked
	// otherwise.
	if !o.fs.Changed("as-root") && !o.fs.Changed("map") {
		opts.AsRoot = true
	}
	return nil
}

// imageUser resolves an image config's user ("1000", "1000:100", "app",
// "app:staff") with the image's /etc/passwd and /etc/group: the newest
// layer that has the file (a layer's own copy is the whole file).
func imageUser(layers []string, user string) (uid, gid int, ok bool) {
	u, g, hasGroup := strings.Cut(user, ":")
	find := func(file, name string) (int, int, bool) {
		for _, l := range layers {
			data, err := os.ReadFile(filepath.Join(l, file))
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(data), "\n") {
				f := strings.Split(line, ":")
				if len(f) >= 4 && f[0] == name {
					a, err1 := strconv.Atoi(f[2])
					b, err2 := strconv.Atoi(f[3])
					return a, b, err1 == nil && err2 == nil
				}
				if len(f) >= 3 && f[0] == name {
					a, err1 := strconv.Atoi(f[2])
					return a, -1, err1 == nil
				}
			}
			return 0, 0, false
		}
		return 0, 0, false
	}
	var err error
	if uid, err = strconv.Atoi(u); err == nil {
		gid = uid
		if _, pg, found := findNumeric(layers, u); found {
			gid = pg
		}
	} else if uid, gid, ok = find("etc/passwd", u); !ok {
		return 0, 0, false
	}
	if hasGroup {
		if n, err := strconv.Atoi(g); err == nil {
			gid = n
		} else if n, _, found := find("etc/group", g); found {
			gid = n
		} else {
			return 0, 0, false
		}
	}
	return uid, gid, uid >= 0 && gid >= 0
}

// findNumeric finds the passwd entry of a numeric uid, for its group.
func findNumeric(layers []string, uid string) (int, int, bool) {
	for _, l := range layers {
		data, err := os.ReadFile(filepath.Join(l, "etc/passwd"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Split(line, ":"); len(f) >= 4 && f[2] == uid {
				g, err := strconv.Atoi(f[3])
				return 0, g, err == nil
			}
		}
		return 0, 0, false
	}
	return 0, 0, false
}

// printDiff prints each overlay's write-set (--diff).
func printDiff(w io.Writer, res *sandbox.Result) {
	for _, ov := range res.Overlays {
		fmt.Fprintf(w, "warden: %s at %s: %s\n", ov.Source, ov.Target, ov.Set.Summary())
		ov.Set.Write(w, ov.Target)
		if ov.Kept != "" {
			fmt.Fprintf(w, "warden: the changes are kept in %s\n", ov.Kept)
		}
		if ov.Err != nil {
			fmt.Fprintf(w, "warden: warning: the write-set of %s is incomplete: %v\n", ov.Target, ov.Err)
		}
	}
}
