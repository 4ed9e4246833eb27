//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/warden-sandbox/warden/policies"
	"github.com/warden-sandbox/warden/sandbox"
	"github.com/warden-sandbox/warden/seccomp"
)

// flagKeys maps run flags to the policy keys they override.
var flagKeys = map[string]string{
	"ro": "filesystem.ro", "rw": "filesystem.rw", "tmpfs": "filesystem.tmpfs", "hide": "filesystem.hide",
	"chdir": "filesystem.chdir", "hostname": "process.hostname", "map": "identity.map", "net": "network.mode",
	"publish": "network.publish", "allow-host-loopback": "network.allow_host_loopback", "env": "process.env", "env-pass": "process.env_pass", "timeout": "process.timeout",
	"kill-grace": "process.kill_grace", "rlimit": "process.rlimits", "cap-add": "process.cap_add",
	"memory": "limits.memory", "pids": "limits.pids", "cpus": "limits.cpus", "limits": "limits.enforce",
	"seccomp": "seccomp.profile", "report": "report.file", "tmpfs-size": "filesystem.tmpfs_size", "cache": "filesystem.caches",
	"overlay": "filesystem.overlay", "trace": "filesystem.trace",
	"cpu-weight": "limits.cpu_weight", "io-weight": "limits.io_weight",
}

// policyEnv describes the host to the policy loader.
func policyEnv(h *sandbox.Host) policies.Env {
	var dirs []string
	if x := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(x) {
		dirs = append(dirs, filepath.Join(x, "warden", "policies"))
	} else if h.Home != "" {
		dirs = append(dirs, filepath.Join(h.Home, ".config", "warden", "policies"))
	}
	dirs = append(dirs, "/etc/warden/policies")
	tmp := os.Getenv("TMPDIR")
	if !filepath.IsAbs(tmp) {
		tmp = "/tmp"
	}
	return sandbox.PolicyEnv(h, os.LookupEnv, dirs, sandbox.Project(h, h.Cwd), tmp)
}

// loadPolicy loads the policy and lays the changed flags over it.
func loadPolicy(o *runOpts, h *sandbox.Host) (*policies.Policy, extraPaths, error) {
	env := policyEnv(h)
	pol, err := policies.Load(o.policy, env)
	if err != nil {
		return nil, extraPaths{}, err
	}
	var flags []policies.Flag
	var extra extraPaths
	var ferr error
	o.fs.Visit(func(f *pflag.Flag) {
		key, ok := flagKeys[f.Name]
		if !ok || ferr != nil {
			return
		}
		vals := []string{f.Value.String()}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			vals = sv.GetSlice()
		}
		for _, v := range vals {
			// --ro SRC:DST with another DST has no policy-list form
			// (lists are same-path); it is laid over the options directly.
			if f.Name == "ro" || f.Name == "rw" || f.Name == "overlay" {
				pm := sandbox.ParsePathMap(v, h.Cwd)
				pm.Origin = "--" + f.Name
				if pm.Src != pm.Dst {
					switch f.Name {
					case "ro":
						extra.ro = append(extra.ro, pm)
					case "rw":
						extra.rw = append(extra.rw, pm)
					default:
						extra.overlay = append(extra.overlay, pm)
					}
					continue
				}
				v = pm.Src
			}
			if (f.Name == "hide" || f.Name == "trace") && !filepath.IsAbs(v) {
				v = filepath.Join(h.Cwd, v)
			}
			flags = append(flags, policies.Flag{Name: "--" + f.Name, Key: key, Value: v})
		}
	})
	if o.asRoot {
		flags = append(flags, policies.Flag{Name: "--as-root", Key: "identity.user", Value: "root"})
	}
	if o.seccompAudit {
		flags = append(flags, policies.Flag{Name: "--seccomp-audit", Key: "seccomp.audit", Value: "true"})
	}
	if len(flags) > 0 {
		if pol, err = policies.Apply(pol, env, flags); err != nil {
			return nil, extraPaths{}, err
		}
	}
	return pol, extra, ferr
}

// extraPaths are --ro, --rw and --overlay SRC:DST with DST not SRC, which
// have no policy-list form and are laid over the options directly.
type extraPaths struct{ ro, rw, overlay []sandbox.PathMap }

func buildOptions(o *runOpts, argv []string, h *sandbox.Host) (sandbox.Options, error) {
	pol, extra, err := loadPolicy(o, h)
	if err != nil {
		return sandbox.Options{}, err
	}
	opts, err := sandbox.OptionsFromPolicy(pol, argv)
	if err != nil {
		return opts, err
	}
	opts.RO = append(opts.RO, extra.ro...)
	opts.RW = append(opts.RW, extra.rw...)
	opts.Overlays = append(opts.Overlays, extra.overlay...)
	if o.overlayKeep != "" {
		opts.OverlayKeep = absPath(o.overlayKeep, h.Cwd)
	}
	if err := rootOptions(o, &opts, h); err != nil {
		return opts, err
	}
	opts.PassFDs = o.passFDs
	if dir, err := seccomp.DefaultCacheDir(); err == nil {
		opts.SeccompCache = dir
	}
	if err := cacheMounts(&opts); err != nil {
		return opts, err
	}
	if o.report == "" {
		o.report = opts.Report
	}
	return opts, nil
}

// cacheMounts turns the policy's cache mounts into directories warden keeps
// under $XDG_CACHE_HOME/warden/caches/POLICY/NAME (made by sandbox.Run on
// first use, mode 0700), never the host's own caches.
func cacheMounts(o *sandbox.Options) error {
	if len(o.CacheSpecs) == 0 {
		return nil
	}
	home := os.Getenv("XDG_CACHE_HOME")
	if !filepath.IsAbs(home) {
		h, err := os.UserHomeDir()
		if err != nil {
			return fmt.Errorf("cache mounts: no $XDG_CACHE_HOME and no home directory: %w", err)
		}
		home = filepath.Join(h, ".cache")
	}
	root := filepath.Join(home, "warden", "caches")
	policy := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, strings.TrimSuffix(o.Policy.Name, ".toml"))
	if policy == "" {
		policy = "default"
	}
	for _, spec := range o.CacheSpecs {
		name, dst, _ := strings.Cut(spec, ":")
		dir := filepath.Join(root, policy, name)
		o.Caches = append(o.Caches, sandbox.PathMap{Src: dir, Dst: dst, Origin: "cache " + spec})
	}
	o.CachesRoot = root
	return nil
}
