//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/warden-sandbox/warden/sandbox"
	"github.com/warden-sandbox/warden/sandbox/image"
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
			o.rootWarnings = append(o.rootWarnings, fmt.Sprintf("image %s asks for user %q, which warden does not switch to yet: the command runs as the jail's root (your own uid outside)", name, cfg.User))
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
