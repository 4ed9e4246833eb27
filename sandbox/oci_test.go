package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

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
		{"hook path", func(s *specs.Spec) { s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "true"}}} }, `hooks.startContainer[0].path "true" must be an absolute path`},
		{"hook timeout", func(s *specs.Spec) {
			zero := 0
			s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/true", Timeout: &zero}}}
		}, "hooks.createContainer[0].timeout 0 must be greater than zero"},
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

// TestContainerHooksProgram: createContainer hooks run in init after the
// last mount, in the new root, before pivot_root, once init has told warden
// (which runs createRuntime hooks then) and read their state; startContainer hooks run in the payload after seccomp, just
// before its execve, get process.env when they have none, and report a
// failure on the start gate, which init keeps open for them.
func TestContainerHooksProgram(t *testing.T) {
	five := 5
	s, b := ociSpec(t, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{
			CreateContainer: []specs.Hook{{Path: "/usr/bin/nvidia-ctk", Args: []string{"nvidia-ctk", "hook", "update-ldcache"}, Timeout: &five}},
			StartContainer:  []specs.Hook{{Path: "/bin/ldconfig"}},
		}
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}}}
	})
	p, _, err := PlanFromSpec(s, b, "/state/c1")
	if err != nil {
		t.Fatal(err)
	}
	if p.Scratch != filepath.Join(b, "rootfs") {
		t.Errorf("the root is attached at %s, want over root.path", p.Scratch)
	}
	h := p.Hooks
	if h == nil || len(h.Create) != 1 || len(h.Start) != 1 || h.Create[0].Timeout != 5*time.Second ||
		!slices.Equal(h.Start[0].Args, []string{"/bin/ldconfig"}) || !slices.Equal(h.Start[0].Env, []string{"PATH=/bin"}) || h.Create[0].Env != nil {
		t.Fatalf("hooks %+v", h)
	}
	h.State = func(status string, pid int) []byte { return []byte(fmt.Sprintf(`{"status":%q,"pid":%d}`, status, pid)) }
	init, payload, err := Programs(p, 3)
	if err != nil {
		t.Fatal(err)
	}
	inOrder(t, init.String(), `read(sync, <go>`, `move_mount(`, `fchdir(`, `sendmsg(sync, {notify hooks})`, `read(sync, <state creating>, 35)  [0 fails]`,
		`execve("/usr/bin/nvidia-ctk", ["nvidia-ctk" "hook" "update-ldcache"], <0 variables>)`, `{5s}`, `pivot_root(".", ".")`,
		`openat(r`, `"exec.fifo"`, `dup3(r`, `, 510, O_CLOEXEC)`)
	inOrder(t, payload.String(), `read(sync, <state created>, 34)  [0 fails]`, `seccomp(`, `execve("/bin/ldconfig", ["/bin/ldconfig"], <1 variables>)`,
		`waitid(P_PIDFD`, `execve(["/bin/sh"], ["sh"]`)
	if payload.ReportFD != GateFD {
		t.Errorf("the payload reports to fd %d, want the gate at %d", payload.ReportFD, GateFD)
	}
	// Without startContainer hooks, init does not keep the gate.
	p.Hooks.Start = nil
	init, _, _ = Programs(p, 3)
	if strings.Contains(init.String(), "510") {
		t.Errorf("the gate is kept without startContainer hooks:\n%s", init)
	}
}

// inOrder checks that listing has each of want, in that order.
func inOrder(t *testing.T, listing string, want ...string) {
	t.Helper()
	at := 0
	for _, w := range want {
		i := strings.Index(listing[at:], w)
		if i < 0 {
			t.Fatalf("listing lacks %q after position %d:\n%s", w, at, listing)
		}
		at += i + len(w)
	}
}
