package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/warden-sandbox/warden/sandbox/mount"
)

// ociSpec is a small valid config with its bundle (a root file system
// directory), changed by edit.
func ociSpec(t *testing.T, edit func(s *specs.Spec)) (*specs.Spec, string) {
	t.Helper()
	b := t.TempDir()
	if err := os.MkdirAll(filepath.Join(b, "rootfs", "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := &specs.Spec{
		Version: "1.2.0",
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"sh"}, Cwd: "/", Env: []string{"PATH=/bin"},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 64, Hard: 128}},
			Capabilities:    &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL", "CAP_CHOWN"}, Effective: []string{"CAP_KILL", "CAP_NET_RAW"}},
			NoNewPrivileges: true},
		Hostname: "c1",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/data", Type: "bind", Source: "rootfs/data", Options: []string{"rbind", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.UserNamespace}, {Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"}},
			UIDMappings:   []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getuid()), Size: 1}},
			GIDMappings:   []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getgid()), Size: 1}},
			MaskedPaths:   []string{"/proc/timer_list", "/nothing-here"},
			ReadonlyPaths: []string{"/proc/sys"},
		},
	}
	if edit != nil {
		edit(s)
	}
	return s, b
}

// TestPlanFromSpec: a config becomes the Plan warden runs: namespaces new
// and joined, the map, the root bind, mounts with their options filtered,
// the default devices, masked and read-only paths, rlimits, capabilities.
func TestPlanFromSpec(t *testing.T) {
	s, b := ociSpec(t, nil)
	p, _, err := PlanFromSpec(s, b, "/state/c1")
	if err != nil {
		t.Fatal(err)
	}
	want := uintptr(syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS | syscall.CLONE_NEWUSER)
	if p.Cloneflags != want || len(p.JoinNS) != 1 || p.JoinNS[0].Path != "/proc/self/ns/net" {
		t.Errorf("namespaces: %#x %+v", p.Cloneflags, p.JoinNS)
	}
	if p.Gate != "/state/c1" || p.Hostname != "c1" || p.Maps.Ranges || p.SetIDs {
		t.Errorf("gate %q hostname %q maps %+v setids %v", p.Gate, p.Hostname, p.Maps, p.SetIDs)
	}
	if r := p.Mounts[0]; r.Kind != mount.Bind || r.Target != "/" || r.Source != filepath.Join(b, "rootfs") || r.ReadOnly {
		t.Errorf("root: %v", r)
	}
	got := mount.Render(p.Mounts)
	for _, line := range []string{
		"tmpfs /dev [mode=755,size=65536k]",         // nosuid, strictatime dropped
		"devpts /dev/pts [ptmxmode=0666,mode=0620]", // gid=5 dropped
		"devbind /dev/null -> /dev/null",
		"bind ro " + filepath.Join(b, "rootfs/data") + " -> /data",
		"hide optional /proc/timer_list (file)",
		"remount optional /proc/sys",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("mounts lack %q:\n%s", line, got)
		}
	}
	if strings.Contains(got, "nothing-here") {
		t.Errorf("a masked path that is not there is mounted:\n%s", got)
	}
	if len(p.Rlimits) != 1 || p.Rlimits[0].Soft != 64 || p.Rlimits[0].Hard != 128 {
		t.Errorf("rlimits %+v", p.Rlimits)
	}
	if len(p.Caps) != 1 || capName(p.Caps[0]) != "CAP_KILL" {
		t.Errorf("caps %v, want CAP_KILL only (effective within bounding)", p.Caps)
	}
}

// TestPlanFromSpecRefusals: what warden cannot do as asked is one error
// naming the config key.
func TestPlanFromSpecRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(s *specs.Spec)
		want string
	}{
		{"version", func(s *specs.Spec) { s.Version = "0.9" }, "unknown version"},
		{"root", func(s *specs.Spec) { s.Root.Path = "missing" }, "root.path missing: not a directory"},
		{"no pid ns", func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[1:] }, `no "pid" namespace`},
		{"pid by path", func(s *specs.Spec) { s.Linux.Namespaces[0].Path = "/proc/1/ns/pid" }, "joining a pid namespace by path"},
		{"dotdot", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x/../../etc", Type: "tmpfs", Source: "tmpfs"})
		}, `without ".."`},
		{"type", func(s *specs.Spec) { s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "nfs"}) }, `type "nfs"`},
		{"device", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/null", Type: "c", Major: 9, Minor: 9}}
		}, "linux.devices[0]: /dev/null is c 9:9"},
		{"hook", func(s *specs.Spec) { s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true"}}} }, "startContainer"},
		{"rlimit", func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}} }, "process.rlimits RLIMIT_BOGUS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, b := ociSpec(t, tc.edit)
			_, _, err := PlanFromSpec(s, b, "/state/c1")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
	// A device the host has, with the config's numbers, is bound.
	s, b := ociSpec(t, func(s *specs.Spec) {
		s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5}}
	})
	p, _, err := PlanFromSpec(s, b, "/state/c1")
	if err != nil || strings.Count(mount.Render(p.Mounts), "-> /dev/zero") != 1 {
		t.Errorf("a host device: %v\n%s", err, mount.Render(p.Mounts))
	}
}
