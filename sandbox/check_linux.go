package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox/cgroup"
	"github.com/warden-sandbox/warden/sandbox/netns"
	"github.com/warden-sandbox/warden/userns"
)

// Verdicts of a host check.
const (
	CheckOK   = "ok"
	CheckWarn = "warn"
	CheckFail = "fail"
)

// Check is one item of `warden check`.
type Check struct {
	Name     string `json:"name"`
	Verdict  string `json:"verdict"`
	Measured string `json:"measured"`
	Fix      string `json:"fix,omitempty"`
}

// CheckEnv is what the host checks read; tests replace it with fixtures.
type CheckEnv struct {
	ReadFile func(string) ([]byte, error)
	LookPath func(string) (string, error)
	Stat     func(string) (os.FileInfo, error)
	// Probe runs the user-namespace probe (a throwaway namespace).
	Probe func() (ProbeResult, error)
	// Cgroup inspects the cgroup setup.
	Cgroup       func() cgroup.Report
	Version      func(bin string, args ...string) string
	UID          int
	User         string
	Exe          string // warden's install path, for the AppArmor profile
	KernelLine   string
	SubUID       []userns.IDMap
	SubGID       []userns.IDMap
	SeccompAvail func() (string, error)
	// Tun checks that /dev/net/tun can be opened (pasta, slirp4netns).
	Tun func() error
}

// ProbeResult is what the throwaway-namespace probe found.
type ProbeResult struct {
	Mount   string `json:"mount"`
	Overlay string `json:"overlay"`
	Fuse    string `json:"fuse"`
}

// RealCheckEnv reads the running host.
func RealCheckEnv() *CheckEnv {
	e := &CheckEnv{ReadFile: os.ReadFile, LookPath: exec.LookPath, Stat: os.Stat, Probe: probeUserns,
		Cgroup: cgroup.Probe, UID: os.Getuid(), Version: toolVersion, SeccompAvail: seccompAvail, Tun: netns.CheckTun}
	if h, err := RealHost(); err == nil && h.LoadSubIDs() == nil {
		e.User, e.SubUID, e.SubGID = h.User, h.SubUID, h.SubGID
	}
	e.Exe, _ = os.Executable()
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		e.KernelLine = unix.ByteSliceToString(u.Release[:])
	}
	return e
}

func (e *CheckEnv) sysctl(name string) (string, bool) {
	b, err := e.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// AppArmorProfile is the profile that lets warden at exe create user
// namespaces with capabilities on hosts that restrict them (Ubuntu ≥ 23.10).
func AppArmorProfile(exe string) string {
	return fmt.Sprintf("abi <abi/4.0>,\ninclude <tunables/global>\n\nprofile warden %s flags=(unconfined) {\n  userns,\n\n  include if exists <local/warden>\n}\n", exe)
}

// RunChecks runs every host check.
func RunChecks(e *CheckEnv) []Check {
	// The slow probes (a namespace, helper binaries' --version) run
	// concurrently, each once.
	probe := make(chan struct{})
	var pr ProbeResult
	var perr error
	realProbe := e.Probe
	go func() { pr, perr = realProbe(); close(probe) }()
	e.Probe = func() (ProbeResult, error) { <-probe; return pr, perr }
	netc := make(chan Check, 1)
	go func() { netc <- checkNet(e) }()
	var out []Check
	add := func(c Check) { out = append(out, c) }
	add(Check{Name: "kernel", Verdict: CheckOK, Measured: "Linux " + e.KernelLine})
	add(checkUserns(e))
	add(checkIDs(e))
	add(checkCgroup(e))
	switch {
	case perr != nil:
		add(Check{Name: "overlayfs", Verdict: CheckWarn, Measured: "not probed: no user namespace"})
		add(Check{Name: "fuse", Verdict: CheckWarn, Measured: "not probed: no user namespace"})
	default:
		add(verdictOf("overlayfs", pr.Overlay, "overlayfs with userxattr mounts in a user namespace", "needs Linux ≥ 5.11 with overlay built in or loaded (modprobe overlay); else install fuse-overlayfs"))
		add(verdictOf("fuse", pr.Fuse, "/dev/fuse opens in a user namespace",
			"/dev/fuse must exist and be mode 0666 (Debian's fuse3 package does both): sudo apt install fuse3"))
	}
	add(<-netc)
	add(checkSeccomp(e))
	if v, ok := e.sysctl("dev.tty.legacy_tiocsti"); ok {
		c := Check{Name: "tiocsti", Verdict: CheckOK, Measured: "dev.tty.legacy_tiocsti=" + v}
		if v == "1" {
			c.Verdict, c.Fix = CheckWarn, "warden's seccomp profiles block TIOCSTI; with --seccomp none set sysctl -w dev.tty.legacy_tiocsti=0"
		}
		add(c)
	}
	return out
}

func verdictOf(name, result, okText, fix string) Check {
	if result == "ok" {
		return Check{Name: name, Verdict: CheckOK, Measured: okText}
	}
	return Check{Name: name, Verdict: CheckWarn, Measured: result, Fix: fix}
}

func checkUserns(e *CheckEnv) Check {
	c := Check{Name: "userns"}
	if v, ok := e.sysctl("kernel.unprivileged_userns_clone"); ok && v == "0" {
		c.Verdict, c.Measured, c.Fix = CheckFail, "kernel.unprivileged_userns_clone=0", "sudo sysctl -w kernel.unprivileged_userns_clone=1"
		return c
	}
	if v, ok := e.sysctl("user.max_user_namespaces"); ok && v == "0" {
		c.Verdict, c.Measured, c.Fix = CheckFail, "user.max_user_namespaces=0", "sudo sysctl -w user.max_user_namespaces=15000"
		return c
	}
	pr, err := e.Probe()
	restricted := false
	if v, ok := e.sysctl("kernel.apparmor_restrict_unprivileged_userns"); ok && v == "1" {
		restricted = true
	}
	switch {
	case err != nil:
		c.Verdict, c.Measured = CheckFail, "creating a user namespace failed: "+err.Error()
	case pr.Mount != "ok":
		c.Verdict, c.Measured = CheckFail, "a user namespace is created but has no capabilities (mount: "+pr.Mount+")"
	default:
		c.Verdict, c.Measured = CheckOK, "created a throwaway user namespace and mounted a tmpfs in it"
		return c
	}
	if restricted {
		c.Measured += "; kernel.apparmor_restrict_unprivileged_userns=1"
		c.Fix = fmt.Sprintf("install this AppArmor profile as /etc/apparmor.d/warden and run `sudo apparmor_parser -r /etc/apparmor.d/warden` (or `sudo make install`):\n%s", AppArmorProfile(e.Exe))
	} else {
		c.Fix = "unprivileged user namespaces are blocked here (container runtime, seccomp or sysctl); run warden on a host or in a container that allows them"
	}
	return c
}

func checkIDs(e *CheckEnv) Check {
	c := Check{Name: "subuid"}
	_, uerr := e.LookPath("newuidmap")
	_, gerr := e.LookPath("newgidmap")
	fix := fmt.Sprintf("sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s", e.User)
	switch {
	case uerr != nil || gerr != nil:
		c.Verdict, c.Measured, c.Fix = CheckWarn, "newuidmap/newgidmap not installed: jails map only your own id", "sudo apt install uidmap"
	case len(e.SubUID) == 0 || len(e.SubGID) == 0:
		c.Verdict, c.Measured, c.Fix = CheckWarn, "no /etc/subuid or /etc/subgid entry for "+e.User+": jails map only your own id", fix
	default:
		n := 0
		for _, r := range e.SubUID {
			n += r.Count
		}
		c.Verdict, c.Measured = CheckOK, fmt.Sprintf("newuidmap/newgidmap installed; %d subordinate uids for %s", n, e.User)
	}
	return c
}

func checkCgroup(e *CheckEnv) Check {
	r := e.Cgroup()
	c := Check{Name: "cgroup", Measured: fmt.Sprintf("cgroup mode %s", r.Mode)}
	if r.Mount != "" {
		c.Measured += ", cgroup2 at " + r.Mount + " with controllers [" + strings.Join(r.RootControllers, " ") + "]"
	}
	if r.Delegated {
		c.Measured += "; delegated subtree " + r.Dir + " [" + strings.Join(r.Controllers, " ") + "]"
	} else if r.UserBus != "" {
		c.Measured += "; not delegated, systemd user manager at " + r.UserBus
	}
	// Controllers missing for the same reason are named together.
	var missing []string
	byReason := map[string][]string{}
	var reasons []string
	for _, k := range []string{"cpu", "io", "memory", "pids"} {
		if why, ok := r.Missing[k]; ok {
			if byReason[why] == nil {
				reasons = append(reasons, why)
			}
			byReason[why] = append(byReason[why], k)
		}
	}
	for _, why := range reasons {
		missing = append(missing, strings.Join(byReason[why], ", ")+": "+why)
	}
	switch {
	case len(missing) == 0:
		c.Verdict = CheckOK
	default:
		c.Verdict = CheckWarn
		c.Measured += "; limits unavailable (" + strings.Join(missing, "; ") + ")"
		c.Fix = r.Fix
	}
	return c
}

func checkNet(e *CheckEnv) Check {
	c := Check{Name: "network helpers"}
	var have []string
	for _, b := range []string{"pasta", "slirp4netns"} {
		if p, err := e.LookPath(b); err == nil {
			have = append(have, b+" "+e.Version(p, "--version"))
		}
	}
	if len(have) == 0 {
		c.Verdict, c.Measured, c.Fix = CheckWarn, "neither pasta nor slirp4netns: only --net none and host", "sudo apt install passt (or slirp4netns)"
		return c
	}
	c.Verdict, c.Measured = CheckOK, strings.Join(have, "; ")
	if e.Tun != nil {
		if err := e.Tun(); err != nil {
			c.Verdict, c.Fix = CheckWarn, "sudo chmod 0666 /dev/net/tun (the distribution default)"
			c.Measured += "; /dev/net/tun unusable: " + err.Error()
		}
	}
	return c
}

func checkSeccomp(e *CheckEnv) Check {
	c := Check{Name: "seccomp"}
	s, err := e.SeccompAvail()
	if err != nil {
		c.Verdict, c.Measured, c.Fix = CheckFail, err.Error(), "a kernel with CONFIG_SECCOMP_FILTER"
		return c
	}
	c.Verdict, c.Measured = CheckOK, s
	return c
}

func toolVersion(bin string, args ...string) string {
	out, _ := exec.Command(bin, args...).CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return "(version unknown)"
}

// probeUserns runs `warden __probe` in a throwaway user and mount namespace
// with the caller mapped to root, and returns what worked there.
func probeUserns() (ProbeResult, error) {
	cmd := exec.Command("/proc/self/exe", "__probe")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	out, err := cmd.Output()
	if err != nil {
		return ProbeResult{}, err
	}
	var r ProbeResult
	if err := json.Unmarshal(out, &r); err != nil {
		return ProbeResult{}, fmt.Errorf("probe output: %w", err)
	}
	return r, nil
}

// ProbeMain is `warden __probe`: run inside a throwaway user+mount
// namespace, it tries a tmpfs, an overlayfs and /dev/fuse and prints JSON.
func ProbeMain() int {
	res := ProbeResult{Mount: "ok", Overlay: "ok", Fuse: "ok"}
	errStr := func(err error) string {
		if err == nil {
			return "ok"
		}
		return err.Error()
	}
	unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, "")
	if err := unix.Mount("tmpfs", "/tmp", "tmpfs", 0, "mode=0700"); err != nil {
		res.Mount = "mount tmpfs: " + errStr(err)
		res.Overlay = "not tried"
	} else {
		for _, d := range []string{"/tmp/l", "/tmp/u", "/tmp/w", "/tmp/m"} {
			os.Mkdir(d, 0o700)
		}
		res.Overlay = errStr(unix.Mount("overlay", "/tmp/m", "overlay", 0, "lowerdir=/tmp/l,upperdir=/tmp/u,workdir=/tmp/w,userxattr"))
		if res.Overlay != "ok" {
			res.Overlay = "mount overlay (userxattr): " + res.Overlay
		}
	}
	if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
		res.Fuse = "open /dev/fuse: " + errStr(errors.Unwrap(err))
	} else {
		f.Close()
	}
	b, _ := json.Marshal(res)
	os.Stdout.Write(b)
	return 0
}
