//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/spf13/pflag"

	"github.com/warden-sandbox/warden/sandbox"
)

// features prints what warden-oci supports (runtime-spec features.md).
func (c *ociCtx) features() int {
	yes := true
	f := features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{},
		MountOptions:  []string{"ro", "rw", "bind", "rbind", "nosuid", "nodev", "noexec", "mode", "size"},
		Linux: &features.Linux{
			Namespaces:   []string{"pid", "network", "ipc", "uts", "mount", "user", "cgroup"},
			Capabilities: capNames(),
			Seccomp:      &features.Seccomp{Enabled: &yes, Actions: []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"}},
		},
		Annotations: map[string]string{"io.github.warden-sandbox.warden.version": sandbox.Version},
	}
	b, _ := json.MarshalIndent(f, "", "  ")
	fmt.Fprintln(c.stdout, string(b))
	return 0
}

func capNames() []string {
	var out []string
	for _, n := range sandbox.CapabilityNames() {
		out = append(out, "CAP_"+n)
	}
	return out
}

// spec writes a default config.json, as `runc spec` does: busybox-sized,
// with --rootless a user namespace mapping your uid and gid to 0.
func (c *ociCtx) spec(args []string) int {
	fs := pflag.NewFlagSet("spec", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	rootless := fs.Bool("rootless", false, "")
	bundle := fs.StringP("bundle", "b", ".", "")
	if err := fs.Parse(args); err != nil {
		return c.fail(sandbox.Usagef("spec: %v", err))
	}
	s := defaultSpec(*rootless)
	b, _ := json.MarshalIndent(s, "", "\t")
	out := filepath.Join(*bundle, "config.json")
	if _, err := os.Stat(out); err == nil {
		return c.fail(errors.New("File config.json exists. Remove it first"))
	}
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return c.fail(err)
	}
	return 0
}

func defaultSpec(rootless bool) *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: false, Args: []string{"sh"}, Cwd: "/",
			Env:             []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"},
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: "warden",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}},
			MaskedPaths: []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
				"/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if rootless {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getuid()), Size: 1}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getgid()), Size: 1}}
	}
	return s
}
