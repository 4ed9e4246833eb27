package seccomp

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/warden-sandbox/warden/seccomp/internal/bpfeval"
	"golang.org/x/sys/unix"
)

const (
	auditX86_64 = 0xc000003e
	auditI386   = 0x40000003
)

// runProg interprets prog for d and decodes the verdict.
func runProg(t testing.TB, prog []byte, d Data) Action {
	t.Helper()
	ins, err := Decode(prog)
	if err != nil {
		t.Fatal(err)
	}
	r, err := bpfeval.Run(ins, bpfeval.Data{Nr: d.Nr, Arch: d.Arch, Args: d.Args})
	if err != nil {
		t.Fatalf("evaluate BPF for %+v: %v", d, err)
	}
	return ActionFromRet(r)
}

func mustResolve(t testing.TB, name string, o Options) *Profile {
	t.Helper()
	p, err := Resolve(name, o)
	if err != nil {
		t.Fatalf("Resolve(%q): %v", name, err)
	}
	return p
}

func nr(t testing.TB, name string) int32 {
	t.Helper()
	n, kind := syscallNr(name)
	if kind != nameNative {
		t.Fatalf("syscall %s is not native here", name)
	}
	return n
}

type evalCase struct {
	name string
	d    Data
	want Action
}

func call(t testing.TB, name string, args ...uint64) Data {
	d := Data{Arch: auditX86_64, Nr: nr(t, name)}
	copy(d.Args[:], args)
	return d
}

func TestBuiltinPrograms(t *testing.T) {
	requireAMD64(t)
	enosys := Errno(unix.ENOSYS)
	common := []evalCase{
		{"getpid", call(t, "getpid"), Allow},
		{"read", call(t, "read", 0, 0, 10), Allow},
		{"futex", call(t, "futex"), Allow},
		{"execve", call(t, "execve"), Allow},
		{"keyctl", call(t, "keyctl"), eperm},
		{"add_key", call(t, "add_key"), eperm},
		{"bpf", call(t, "bpf"), eperm},
		{"perf_event_open", call(t, "perf_event_open"), eperm},
		{"userfaultfd", call(t, "userfaultfd"), eperm},
		{"init_module", call(t, "init_module"), eperm},
		{"kexec_load", call(t, "kexec_load"), eperm},
		{"open_by_handle_at", call(t, "open_by_handle_at"), eperm},
		{"name_to_handle_at", call(t, "name_to_handle_at"), eperm},
		{"fsopen", call(t, "fsopen"), eperm},
		{"open_tree_attr (newer than libseccomp)", call(t, "open_tree_attr"), eperm},
		{"mount", call(t, "mount"), eperm},
		{"pivot_root", call(t, "pivot_root"), eperm},
		{"chroot", call(t, "chroot"), eperm},
		{"ptrace", call(t, "ptrace"), eperm},
		{"process_vm_readv", call(t, "process_vm_readv"), eperm},
		{"io_uring_setup", call(t, "io_uring_setup"), eperm},
		{"unshare", call(t, "unshare", unix.CLONE_NEWUSER), eperm},
		{"setns", call(t, "setns"), eperm},
		{"clone plain (fork)", call(t, "clone", uint64(unix.SIGCHLD)), Allow},
		{"clone thread", call(t, "clone", unix.CLONE_VM|unix.CLONE_FS|unix.CLONE_FILES|unix.CLONE_SIGHAND|unix.CLONE_THREAD|unix.CLONE_SYSVSEM|unix.CLONE_SETTLS|unix.CLONE_PARENT_SETTID|unix.CLONE_CHILD_CLEARTID), Allow},
		{"clone CLONE_NEWUSER", call(t, "clone", unix.CLONE_NEWUSER|uint64(unix.SIGCHLD)), eperm},
		{"clone CLONE_NEWNS", call(t, "clone", unix.CLONE_NEWNS), eperm},
		{"clone CLONE_NEWTIME", call(t, "clone", unix.CLONE_NEWTIME), eperm},
		{"clone3", call(t, "clone3"), enosys},
		// Queued signals are plain signals to the filter: the jail's init
		// catches none, so the kernel discards those sent to it.
		{"rt_sigqueueinfo to PID 1", call(t, "rt_sigqueueinfo", 1, uint64(unix.SIGSEGV), 0x1000), Allow},
		{"rt_tgsigqueueinfo to PID 7", call(t, "rt_tgsigqueueinfo", 7, 8, uint64(unix.SIGUSR1), 0x1000), Allow},
		{"pidfd_send_signal with siginfo", call(t, "pidfd_send_signal", 3, uint64(unix.SIGSEGV), 0x1000, 0), Allow},
		{"ioctl TIOCSTI", call(t, "ioctl", 0, unix.TIOCSTI), eperm},
		{"ioctl TIOCSTI high bits set", call(t, "ioctl", 0, 0xffffffff00000000|unix.TIOCSTI), eperm},
		{"ioctl TIOCLINUX", call(t, "ioctl", 0, unix.TIOCLINUX), eperm},
		{"ioctl TIOCGWINSZ", call(t, "ioctl", 1, unix.TIOCGWINSZ), Allow},
		{"ioctl TCGETS", call(t, "ioctl", 1, unix.TCGETS), Allow},
		{"acct", call(t, "acct"), eperm},
		{"swapon", call(t, "swapon"), eperm},
		{"reboot", call(t, "reboot"), eperm},
		{"settimeofday", call(t, "settimeofday"), eperm},
		{"clock_settime", call(t, "clock_settime"), eperm},
		{"syslog", call(t, "syslog"), eperm},
		{"socket AF_INET", call(t, "socket", unix.AF_INET, unix.SOCK_STREAM), Allow},
		{"socket AF_UNIX", call(t, "socket", unix.AF_UNIX, unix.SOCK_STREAM), Allow},
		{"socket AF_VSOCK", call(t, "socket", unix.AF_VSOCK, unix.SOCK_STREAM), eperm},
		{"i386 getpid (nr 20)", Data{Arch: auditI386, Nr: 20}, KillProcess},
		{"i386 any", Data{Arch: auditI386, Nr: 1}, KillProcess},
		{"x32 getpid", Data{Arch: auditX86_64, Nr: x32Bit | 39}, KillProcess},
		{"x32 read", Data{Arch: auditX86_64, Nr: x32Bit}, KillProcess},
		{"nr -1", Data{Arch: auditX86_64, Nr: -1}, enosys},
		{"unknown high nr 1000", Data{Arch: auditX86_64, Nr: 1000}, enosys},
		{"unknown just above known", Data{Arch: auditX86_64, Nr: 500}, enosys},
		{"known but unlisted (uselib)", call(t, "uselib"), eperm},
		{"unassigned number in range (400)", Data{Arch: auditX86_64, Nr: 400}, eperm},
	}
	tests := map[string][]evalCase{
		"default": append(common[:len(common):len(common)],
			evalCase{"personality query", call(t, "personality", 0xffffffff), Allow},
			evalCase{"personality PER_LINUX", call(t, "personality", 0), Allow},
			evalCase{"personality PER_LINUX32", call(t, "personality", 8), Allow},
			evalCase{"personality UNAME26", call(t, "personality", 0x20000), Allow},
			evalCase{"personality READ_IMPLIES_EXEC", call(t, "personality", 0x0400000), eperm},
			evalCase{"personality ADDR_NO_RANDOMIZE", call(t, "personality", 0x0040000), eperm},
			evalCase{"modify_ldt", call(t, "modify_ldt"), Allow},
			evalCase{"socket AF_PACKET", call(t, "socket", unix.AF_PACKET), Allow},
		),
		"strict": append(common[:len(common):len(common)],
			evalCase{"personality query", call(t, "personality", 0xffffffff), eperm},
			evalCase{"personality PER_LINUX", call(t, "personality", 0), eperm},
			evalCase{"modify_ldt", call(t, "modify_ldt"), eperm},
			evalCase{"socket AF_PACKET", call(t, "socket", unix.AF_PACKET), eperm},
			evalCase{"socket AF_NETLINK", call(t, "socket", unix.AF_NETLINK), Allow},
			evalCase{"socket AF_INET6", call(t, "socket", unix.AF_INET6), Allow},
		),
	}
	for name, cases := range tests {
		t.Run(name, func(t *testing.T) {
			p := mustResolve(t, name, Options{})
			prog, err := Compile(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					got := runProg(t, prog, c.d)
					if diff := cmp.Diff(c.want, got); diff != "" {
						t.Errorf("BPF verdict for %+v (-want +got):\n%s", c.d, diff)
					}
					dec, err := p.Decide(c.d)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(c.want, p.Effective(dec)); diff != "" {
						t.Errorf("Decide for %+v (-want +got):\n%s", c.d, diff)
					}
				})
			}
		})
	}
}

func TestOptionsPrograms(t *testing.T) {
	requireAMD64(t)
	eacces := Errno(unix.EACCES)
	tests := []struct {
		name string
		o    Options
		want []evalCase
	}{
		{"nested userns", Options{NestedUserns: true}, []evalCase{
			{"unshare", call(t, "unshare", unix.CLONE_NEWUSER), Allow},
			{"clone CLONE_NEWUSER", call(t, "clone", unix.CLONE_NEWUSER), Allow},
			{"clone3", call(t, "clone3"), Allow},
			{"setns", call(t, "setns"), Allow},
		}},
		{"io_uring and ptrace", Options{IOUring: true, Ptrace: true}, []evalCase{
			{"io_uring_setup", call(t, "io_uring_setup"), Allow},
			{"ptrace", call(t, "ptrace"), Allow},
			{"process_vm_writev", call(t, "process_vm_writev"), Allow},
			{"keyctl still denied", call(t, "keyctl"), eperm},
		}},
		{"allow and deny with EACCES", Options{Allow: []string{"keyctl"}, Deny: []string{"mkdir", "ioctl"}, Errno: "EACCES"}, []evalCase{
			{"keyctl", call(t, "keyctl"), Allow},
			{"mkdir", call(t, "mkdir"), eacces},
			{"ioctl any", call(t, "ioctl", 1, unix.TCGETS), eacces},
			{"bpf", call(t, "bpf"), eacces},
			{"unknown nr still ENOSYS", Data{Arch: auditX86_64, Nr: 999}, Errno(unix.ENOSYS)},
			{"clone3 still ENOSYS", call(t, "clone3"), Errno(unix.ENOSYS)},
		}},
		{"kill", Options{Action: "kill"}, []evalCase{
			{"bpf", call(t, "bpf"), KillProcess},
			{"ioctl TIOCSTI", call(t, "ioctl", 0, unix.TIOCSTI), KillProcess},
			{"getpid", call(t, "getpid"), Allow},
		}},
		{"log", Options{Action: "log"}, []evalCase{
			{"bpf", call(t, "bpf"), Action{Kind: ActLog}},
			{"uselib", call(t, "uselib"), Action{Kind: ActLog}},
		}},
		{"audit", Options{Audit: true}, []evalCase{
			{"keyctl", call(t, "keyctl"), Action{Kind: ActNotify}},
			{"ioctl TIOCSTI", call(t, "ioctl", 0, unix.TIOCSTI), Action{Kind: ActNotify}},
			{"clone3 stays ENOSYS", call(t, "clone3"), Errno(unix.ENOSYS)},
			{"getpid", call(t, "getpid"), Allow},
			{"i386", Data{Arch: auditI386, Nr: 1}, KillProcess},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.o.Audit && !NotifySupported() {
				t.Skip("needs SECCOMP_RET_USER_NOTIF (Linux 5.0+)")
			}
			p := mustResolve(t, "default", tc.o)
			prog, err := Compile(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tc.want {
				got := runProg(t, prog, c.d)
				if diff := cmp.Diff(c.want, got); diff != "" {
					t.Errorf("%s: BPF verdict (-want +got):\n%s", c.name, diff)
				}
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		name    string
		profile string
		o       Options
		want    string
	}{
		{"unknown allow", "default", Options{Allow: []string{"frobnicate"}}, `seccomp: syscall "frobnicate": unknown syscall`},
		{"unknown deny", "strict", Options{Deny: []string{"kexec_lode"}}, `seccomp: syscall "kexec_lode": unknown syscall`},
		{"bad errno", "default", Options{Errno: "EWHAT"}, `seccomp: errno "EWHAT": not an error name such as EPERM or EACCES`},
		{"bad action", "default", Options{Action: "explode"}, `seccomp: action "explode": want errno, kill or log`},
		{"unknown profile", "lenient", Options{}, `seccomp profile "lenient": no such built-in profile (have default, strict, none)`},
		{"none with deny", "none", Options{Deny: []string{"bpf"}}, "seccomp profile none: allow, deny and audit need a filter; pick a profile such as default"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Resolve(tc.profile, tc.o)
			if err == nil {
				t.Fatalf("Resolve = nil error, want %q", tc.want)
			}
			if got := err.Error(); len(got) < len(tc.want) || got[:len(tc.want)] != tc.want {
				t.Errorf("Resolve error = %q, want prefix %q", got, tc.want)
			}
		})
	}
}

func TestNoneIsNoFilter(t *testing.T) {
	p, err := Resolve("none", Options{})
	if err != nil || p != nil {
		t.Fatalf("Resolve(none) = %v, %v; want nil, nil", p, err)
	}
	prog, err := Compile(p)
	if err != nil || prog != nil {
		t.Fatalf("Compile(nil) = %v, %v; want nil, nil", prog, err)
	}
	if got, want := Render(nil), "seccomp: off\n"; got != want {
		t.Errorf("Render(nil) = %q, want %q", got, want)
	}
}
