package sandbox

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox/mount"
)

// ociMounts is the view of an OCI container: its root file system (a bind
// of root.path, read-only when root.readonly), the config's mounts in
// order, the default devices of the runtime spec where /dev is a tmpfs,
// then maskedPaths hidden and readonlyPaths made read-only.
func ociMounts(spec *specs.Spec, bundle, rootfs string, p *Plan) ([]mount.Op, []Warning, error) {
	var warns []Warning
	ops := []mount.Op{{Kind: mount.Bind, Source: rootfs, Target: "/", ReadOnly: spec.Root.Readonly}}
	devTmpfs := false
	for i, m := range spec.Mounts {
		dst := m.Destination
		if !path.IsAbs(dst) || slices.Contains(strings.Split(dst, "/"), "..") {
			return nil, nil, Usagef("config.json: mounts[%d]: destination %q must be an absolute path inside the container, without \"..\"", i, dst)
		}
		dst = path.Clean(dst)
		if dst == "/" {
			return nil, nil, Usagef("config.json: mounts[%d]: a mount onto \"/\"; the root is root.path", i)
		}
		ro := slices.Contains(m.Options, "ro")
		bind := m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
		switch {
		case bind:
			src := m.Source
			if !filepath.IsAbs(src) {
				src = filepath.Join(bundle, src)
			}
			fi, err := os.Stat(src)
			if err != nil {
				return nil, nil, Usagef("config.json: mounts[%d]: bind source %s: %v", i, m.Source, err)
			}
			ops = append(ops, mount.Op{Kind: mount.Bind, Source: filepath.Clean(src), Target: dst, ReadOnly: ro, File: !fi.IsDir()})
		case m.Type == "proc":
			ops = append(ops, mount.Op{Kind: mount.Proc, Target: dst, Source: m.Source})
		case m.Type == "tmpfs":
			if dst == "/dev" {
				devTmpfs = true
			}
			ops = append(ops, mount.Op{Kind: mount.Tmpfs, Target: dst, Source: m.Source, ReadOnly: ro, Data: fsData(m.Options, "mode", "size", "nr_inodes")})
			if dst == "/dev" {
				ops = append(ops, defaultDevices()...)
			}
		case m.Type == "devpts":
			ops = append(ops, mount.Op{Kind: mount.Devpts, Target: dst, Source: m.Source, Data: fsData(m.Options, "mode", "ptmxmode")})
		case m.Type == "mqueue":
			ops = append(ops, mount.Op{Kind: mount.Mqueue, Target: dst, Source: m.Source, Optional: true})
		case m.Type == "sysfs":
			if p.Cloneflags&syscall.CLONE_NEWNET != 0 {
				ops = append(ops, mount.Op{Kind: mount.Sysfs, Target: dst, Source: m.Source, ReadOnly: true, Optional: true})
			} else {
				// A new sysfs needs a network namespace of the container's
				// own (a joined one, podman's, belongs to another user
				// namespace): the host's, read-only, instead (as runc and
				// podman do).
				ops = append(ops, mount.Op{Kind: mount.Bind, Source: "/sys", Target: dst, ReadOnly: true, Optional: true})
			}
		case m.Type == "cgroup" || m.Type == "cgroup2":
			// No cgroup namespace with a tree of its own here: the host's
			// cgroup file system, read-only (runc's rootless fallback).
			ops = append(ops, mount.Op{Kind: mount.Bind, Source: "/sys/fs/cgroup", Target: dst, ReadOnly: true, Optional: true})
		default:
			return nil, nil, Usagef("config.json: mounts[%d]: type %q at %s is not supported; warden mounts bind, proc, tmpfs, devpts, mqueue, sysfs and cgroup", i, m.Type, m.Destination)
		}
	}
	if !devTmpfs {
		warns = append(warns, Warning{What: "config.json: no tmpfs at /dev", Reason: "the root file system's /dev is used as it is, without the spec's default devices"})
	}
	for i, d := range spec.Linux.Devices {
		op, err := deviceOp(d)
		if err != nil {
			return nil, nil, Usagef("config.json: linux.devices[%d]: %v", i, err)
		}
		if !slices.ContainsFunc(ops, func(o mount.Op) bool { return o.Target == op.Target }) {
			ops = append(ops, op)
		}
	}
	for _, mp := range spec.Linux.MaskedPaths {
		if op, ok := maskOp(rootfs, mp); ok {
			ops = append(ops, op)
		}
	}
	for _, rp := range spec.Linux.ReadonlyPaths {
		if path.IsAbs(rp) {
			ops = append(ops, mount.Op{Kind: mount.Remount, Target: path.Clean(rp), Optional: true})
		}
	}
	return ops, warns, nil
}

// defaultDevices are the devices every container gets (runtime-spec
// config-linux.md "Default Devices"), bound from the host: a user namespace
// cannot make device nodes.
func defaultDevices() []mount.Op {
	var ops []mount.Op
	for _, n := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		ops = append(ops, mount.Op{Kind: mount.DevBind, Source: "/dev/" + n, Target: "/dev/" + n, File: true})
	}
	return append(ops,
		mount.Op{Kind: mount.Symlink, Source: "pts/ptmx", Target: "/dev/ptmx"},
		mount.Op{Kind: mount.Symlink, Source: "/proc/self/fd", Target: "/dev/fd"},
		mount.Op{Kind: mount.Symlink, Source: "/proc/self/fd/0", Target: "/dev/stdin"},
		mount.Op{Kind: mount.Symlink, Source: "/proc/self/fd/1", Target: "/dev/stdout"},
		mount.Op{Kind: mount.Symlink, Source: "/proc/self/fd/2", Target: "/dev/stderr"},
	)
}

// deviceOp shows a config's device: the host's node of the same type and
// number at the same path, bound (a user namespace cannot make device
// nodes; podman --device and Kubernetes device plugins name host devices).
func deviceOp(d specs.LinuxDevice) (mount.Op, error) {
	if !path.IsAbs(d.Path) || slices.Contains(strings.Split(d.Path, "/"), "..") {
		return mount.Op{}, fmt.Errorf("path %q must be absolute, without \"..\"", d.Path)
	}
	var st unix.Stat_t
	if err := unix.Stat(d.Path, &st); err != nil {
		return mount.Op{}, fmt.Errorf("%s is not on the host (%v); warden binds the host's device nodes", d.Path, err)
	}
	kind := map[string]uint32{"c": unix.S_IFCHR, "u": unix.S_IFCHR, "b": unix.S_IFBLK}[d.Type]
	if kind == 0 || st.Mode&unix.S_IFMT != kind || int64(unix.Major(uint64(st.Rdev))) != d.Major || int64(unix.Minor(uint64(st.Rdev))) != d.Minor {
		return mount.Op{}, fmt.Errorf("%s is %s %d:%d in config.json but not on the host; warden binds the host's device nodes", d.Path, d.Type, d.Major, d.Minor)
	}
	return mount.Op{Kind: mount.DevBind, Source: path.Clean(d.Path), Target: path.Clean(d.Path), File: true}, nil
}

// maskOp hides a masked path: under /proc and /sys the kernel's own
// files, elsewhere the root file system's. A path that is not there needs
// no mask.
func maskOp(rootfs, p string) (mount.Op, bool) {
	if !path.IsAbs(p) {
		return mount.Op{}, false
	}
	p = path.Clean(p)
	where := filepath.Join(rootfs, p)
	if strings.HasPrefix(p, "/proc/") || strings.HasPrefix(p, "/sys/") {
		where = p
	}
	fi, err := os.Lstat(where)
	if err != nil || fi.Mode()&os.ModeSymlink != 0 {
		return mount.Op{}, false
	}
	return mount.Op{Kind: mount.Hide, Target: p, File: !fi.IsDir(), Optional: true}, true
}

// fsData keeps the options a file system takes as key=value (mode=1777),
// dropping mount flags (nosuid, strictatime) and ids a user namespace may
// not map (gid=5).
func fsData(opts []string, keys ...string) string {
	var out []string
	for _, o := range opts {
		k, _, ok := strings.Cut(o, "=")
		if ok && slices.Contains(keys, k) {
			out = append(out, o)
		}
	}
	return strings.Join(out, ",")
}
