package sandbox

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/sandbox/cgroup"
	"github.com/warden-sandbox/warden/userns"
)

// fixtureEnv is a host where everything works, from fixture values.
func fixtureEnv(sysctls map[string]string) *CheckEnv {
	return &CheckEnv{
		ReadFile: func(p string) ([]byte, error) {
			if v, ok := sysctls[p]; ok {
				return []byte(v + "\n"), nil
			}
			return nil, fs.ErrNotExist
		},
		LookPath: func(b string) (string, error) { return "/usr/bin/" + b, nil },
		Stat:     os.Stat,
		Probe:    func() (ProbeResult, error) { return ProbeResult{Mount: "ok", Overlay: "ok", Fuse: "ok"}, nil },
		Cgroup: func() cgroup.Report {
			return cgroup.Report{Mode: "unified", Mount: "/sys/fs/cgroup", Delegated: true, Dir: "/sys/fs/cgroup/user.slice/x",
				RootControllers: []string{"cpu", "io", "memory", "pids"}, Controllers: []string{"cpu", "io", "memory", "pids"}, Missing: map[string]string{}}
		},
		Version:      func(string, ...string) string { return "1.0" },
		SeccompAvail: func() (string, error) { return "seccomp filters available", nil },
		User:         "alice", Exe: "/usr/local/bin/warden", KernelLine: "6.8.0",
		SubUID: []userns.IDMap{{Host: 100000, Count: 65536}}, SubGID: []userns.IDMap{{Host: 100000, Count: 65536}},
	}
}

func verdicts(cs []Check) map[string]Check {
	m := map[string]Check{}
	for _, c := range cs {
		m[c.Name] = c
	}
	return m
}

func TestChecksAllGood(t *testing.T) {
	for _, c := range RunChecks(fixtureEnv(nil)) {
		if c.Verdict != CheckOK {
			t.Errorf("%s: %s (%s), want ok", c.Name, c.Verdict, c.Measured)
		}
	}
}

// TestChecksAppArmorRestricted is Ubuntu ≥ 23.10: the namespace is created
// but has no capabilities, so mounting fails; check must say why and print
// the profile for warden's path.
func TestChecksAppArmorRestricted(t *testing.T) {
	e := fixtureEnv(map[string]string{"/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1"})
	e.Probe = func() (ProbeResult, error) {
		return ProbeResult{Mount: "mount tmpfs: operation not permitted", Overlay: "not tried", Fuse: "ok"}, nil
	}
	c := verdicts(RunChecks(e))["userns"]
	if c.Verdict != CheckFail || !strings.Contains(c.Measured, "apparmor_restrict_unprivileged_userns=1") {
		t.Errorf("userns check = %+v, want fail naming the AppArmor sysctl", c)
	}
	for _, want := range []string{"profile warden /usr/local/bin/warden", "userns,", "apparmor_parser -r /etc/apparmor.d/warden"} {
		if !strings.Contains(c.Fix, want) {
			t.Errorf("fix lacks %q:\n%s", want, c.Fix)
		}
	}
}

func TestChecksBlockers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(*CheckEnv)
		check   string
		verdict string
		fix     string
	}{
		{"sysctl off", func(e *CheckEnv) {
			e.ReadFile = fixtureEnv(map[string]string{"/proc/sys/user/max_user_namespaces": "0"}).ReadFile
		}, "userns", CheckFail, "user.max_user_namespaces=15000"},
		{"clone fails", func(e *CheckEnv) {
			e.Probe = func() (ProbeResult, error) { return ProbeResult{}, errors.New("operation not permitted") }
		}, "userns", CheckFail, "blocked here"},
		{"no uidmap", func(e *CheckEnv) {
			e.LookPath = func(b string) (string, error) { return "", errors.New("not found") }
		}, "subuid", CheckWarn, "apt install uidmap"},
		{"no subuid entry", func(e *CheckEnv) { e.SubUID = nil }, "subuid", CheckWarn, "usermod --add-subuids"},
		{"hybrid cgroups", func(e *CheckEnv) {
			e.Cgroup = func() cgroup.Report {
				return cgroup.Report{Mode: "hybrid", Mount: "/sys/fs/cgroup/unified", RootControllers: []string{"hugetlb"},
					Missing: map[string]string{"memory": "v1", "pids": "v1", "cpu": "v1", "io": "v1"}, Fix: "boot with systemd.unified_cgroup_hierarchy=1"}
			}
		}, "cgroup", CheckWarn, "unified_cgroup_hierarchy"},
		{"no net helpers", func(e *CheckEnv) {
			e.LookPath = func(b string) (string, error) {
				if b == "pasta" || b == "slirp4netns" {
					return "", errors.New("not found")
				}
				return "/usr/bin/" + b, nil
			}
		}, "network helpers", CheckWarn, "apt install passt"},
		{"tun not usable", func(e *CheckEnv) { e.Tun = func() error { return errors.New("permission denied") } },
			"network helpers", CheckWarn, "chmod 0666 /dev/net/tun"},
		{"no overlay", func(e *CheckEnv) {
			e.Probe = func() (ProbeResult, error) {
				return ProbeResult{Mount: "ok", Overlay: "mount overlay: no such device", Fuse: "ok"}, nil
			}
		}, "overlayfs", CheckWarn, "fuse-overlayfs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := fixtureEnv(nil)
			tc.mutate(e)
			c := verdicts(RunChecks(e))[tc.check]
			if c.Verdict != tc.verdict || !strings.Contains(c.Fix, tc.fix) {
				t.Errorf("%s = %+v, want %s with a fix containing %q", tc.check, c, tc.verdict, tc.fix)
			}
		})
	}
}
