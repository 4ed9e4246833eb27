package seccomp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

var testEnv = ImportEnv{Kernel: "6.18.4-amd64", Arch: "amd64"}

func loadDocker(t *testing.T) *Profile {
	t.Helper()
	data, err := os.ReadFile("testdata/docker-default.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseJSON("docker-default.json", data, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDockerDefault loads Docker's own default.json, compiles it and checks
// that what `sh -c true` (and a fork/exec/wait) needs passes, and that the
// profile's own denials hold.
func TestDockerDefault(t *testing.T) {
	requireAMD64(t)
	p := loadDocker(t)
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	shTrue := strings.Fields(`execve brk mmap arch_prctl access openat newfstatat fstat read pread64 close
		mprotect set_tid_address set_robust_list rseq prlimit64 getrandom munmap getuid geteuid getgid
		getegid getpid getppid rt_sigaction rt_sigprocmask rt_sigreturn wait4 exit_group fcntl dup2
		getcwd uname write lseek stat faccessat2 statx futex sched_getaffinity pipe2 getdents64`)
	for _, n := range shTrue {
		t.Run(n, func(t *testing.T) {
			if got := runProg(t, prog, call(t, n)); got != Allow {
				t.Errorf("%s = %s, want allow", n, got)
			}
		})
	}
	tests := []evalCase{
		{"fork via clone", call(t, "clone", uint64(unix.SIGCHLD)), Allow},
		{"clone CLONE_NEWUSER", call(t, "clone", unix.CLONE_NEWUSER), eperm},
		{"clone3", call(t, "clone3"), Errno(unix.ENOSYS)},
		{"keyctl", call(t, "keyctl"), eperm},
		{"bpf (needs CAP_BPF)", call(t, "bpf"), eperm},
		{"mount (needs CAP_SYS_ADMIN)", call(t, "mount"), eperm},
		{"ptrace (kernel >= 4.8)", call(t, "ptrace"), Allow},
		{"socket AF_INET", call(t, "socket", unix.AF_INET), Allow},
		{"socket AF_VSOCK", call(t, "socket", unix.AF_VSOCK), eperm},
		{"personality 0", call(t, "personality", 0), Allow},
		{"personality READ_IMPLIES_EXEC", call(t, "personality", 0x400000), eperm},
		{"mseal (newer than libseccomp)", call(t, "mseal"), Allow},
		{"x32", Data{Arch: auditX86_64, Nr: x32Bit | 1}, KillProcess},
		{"i386", Data{Arch: auditI386, Nr: 1}, KillProcess},
		{"unknown high", Data{Arch: auditX86_64, Nr: 1000}, Errno(unix.ENOSYS)},
	}
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			if diff := cmp.Diff(c.want, runProg(t, prog, c.d)); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
		})
	}
	var msgs []string
	for _, w := range p.Warnings {
		msgs = append(msgs, w.Msg)
	}
	wantWarn := []string{
		"seccomp profile docker-default.json: architectures SCMP_ARCH_X86, SCMP_ARCH_X32 ignored: warden kills every ABI but the native one",
		"seccomp profile docker-default.json: 1 syscall names unknown to libseccomp " + libVersion() + " and warden were skipped: riscv_hwprobe",
	}
	if diff := cmp.Diff(wantWarn, msgs); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

// TestLoadFileResolve goes through Resolve with a path, as the policy does.
func TestLoadFileResolve(t *testing.T) {
	p, err := Resolve("testdata/docker-default.json", Options{Deny: []string{"ptrace"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(p); err != nil {
		t.Fatal(err)
	}
	d, err := p.Decide(Data{Arch: mustNative(t), Nr: nr(t, "ptrace")})
	if err != nil {
		t.Fatal(err)
	}
	if d != eperm {
		t.Errorf("ptrace after deny = %s, want errno(EPERM)", d)
	}
	_, err = Resolve("testdata/missing.json", Options{})
	if err == nil || !strings.Contains(err.Error(), "testdata/missing.json") {
		t.Errorf("Resolve(missing) = %v, want an error naming the file", err)
	}
}

func mustNative(t *testing.T) uint32 {
	a, err := NativeArch()
	if err != nil {
		t.Skip(err)
	}
	return a
}

func TestParseJSONErrors(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"syntax", "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [,]\n}", "seccomp profile p.json: 3:16: invalid character ',' looking for beginning of value"},
		{"unknown field", "{\n  \"defaultAcion\": \"SCMP_ACT_ERRNO\"\n}", `seccomp profile p.json: 2:3: unknown field "defaultAcion"`},
		{"wrong type", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": "read", "action": "SCMP_ACT_ALLOW"}]}`, "seccomp profile p.json: 1:66: syscalls.names: want []string, have string"},
		{"missing default", `{"syscalls": []}`, "seccomp profile p.json: defaultAction: missing"},
		{"unknown action", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_MAYBE"}]}`, `seccomp profile p.json: syscalls[0].action: unknown action "SCMP_ACT_MAYBE"`},
		{"missing action", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"]}]}`, "seccomp profile p.json: syscalls[0]: action: missing"},
		{"notify", `{"defaultAction": "SCMP_ACT_NOTIFY"}`, "seccomp profile p.json: defaultAction: SCMP_ACT_NOTIFY is not supported (use [seccomp] audit = true)"},
		{"bad op", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}`, `seccomp profile p.json: syscalls[0].args[0].op: unknown operator "SCMP_CMP_ABOUT"`},
		{"bad index", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}`, "seccomp profile p.json: syscalls[0].args[0].index: 6 out of range 0-5"},
		{"name and names", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "read", "names": ["read"], "action": "SCMP_ACT_ALLOW"}]}`, "seccomp profile p.json: syscalls[0]: both name and names"},
		{"bad minKernel", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "four"}}]}`, `seccomp profile p.json: syscalls[0].includes.minKernel: "four": want <kernel>.<major>, such as 4.8`},
		{"conflict", `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": ["read"], "action": "SCMP_ACT_KILL_PROCESS"}]}`, "seccomp profile p.json: syscalls[1]: read: action kill-process conflicts with allow from syscalls[0]"},
		{"errno range", `{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000}`, "seccomp profile p.json: defaultAction: errnoRet 5000 out of range 1-4095"},
		{"trailing data", `{"defaultAction": "SCMP_ACT_ERRNO"} {}`, "seccomp profile p.json:1:37: data after the profile object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJSON("p.json", []byte(tc.json), testEnv)
			if err == nil {
				t.Fatalf("ParseJSON = nil error, want %q", tc.want)
			}
			if diff := cmp.Diff(tc.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseJSONOCI reads a plain OCI LinuxSeccomp with repeated argument
// indexes (ORed, as runc does) and checks the semantics in the evaluator.
func TestParseJSONOCI(t *testing.T) {
	requireAMD64(t)
	js := `{
	  "defaultAction": "SCMP_ACT_ALLOW",
	  "architectures": ["SCMP_ARCH_X86_64"],
	  "syscalls": [
	    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
	    {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [
	      {"index": 0, "value": 17, "op": "SCMP_CMP_EQ"},
	      {"index": 0, "value": 40, "op": "SCMP_CMP_EQ"}]}
	  ]
	}`
	p, err := ParseJSON("oci.json", []byte(js), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Warnings) != 0 {
		t.Errorf("warnings: %v", p.Warnings)
	}
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	tests := []evalCase{
		{"mkdir", call(t, "mkdir"), Errno(unix.EACCES)},
		{"getpid", call(t, "getpid"), Allow},
		{"socket AF_PACKET", call(t, "socket", unix.AF_PACKET), eperm},
		{"socket AF_VSOCK", call(t, "socket", unix.AF_VSOCK), eperm},
		{"socket AF_INET", call(t, "socket", unix.AF_INET), Allow},
		{"above highest named", Data{Arch: auditX86_64, Nr: 400}, Errno(unix.ENOSYS)},
	}
	for _, c := range tests {
		if diff := cmp.Diff(c.want, runProg(t, prog, c.d)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
}

func TestRenderDefault(t *testing.T) {
	p := mustResolve(t, "default", Options{Allow: []string{"ptrace"}})
	got := Render(p)
	for _, want := range []string{
		"profile default\n",
		"  known syscalls not listed     errno(EPERM)\n",
		"\n[keyring] the kernel keyring is not namespaced",
		"  errno(EPERM)   keyctl\n",
		"  errno(EPERM)   ioctl if arg1&0xffffffff == 0x5412  (TIOCSTI)\n",
		"  allow          clone if arg0&0x7e020080 == 0x0  (no CLONE_NEW* flag)\n",
		"  errno(ENOSYS)  clone3\n",
		"[policy-allow] allowed by the policy (allow = [...])\n  allow          ptrace\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Render(default) lacks %q", want)
		}
	}
	if strings.Count(got, " ptrace\n") != 1 {
		t.Errorf("ptrace should appear once (allow replaced the deny rule):\n%s", got)
	}
	pfc, err := ExportPFC(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# warden prologue", "action KILL_PROCESS", "# pseudo filter code start"} {
		if !strings.Contains(pfc, want) {
			t.Errorf("ExportPFC lacks %q", want)
		}
	}
	_ = filepath.Join
}

// TestFirstRuleWins: with FirstRuleWins (OCI configs from engines), the
// first of two conflicting unconditional rules stays, as in libseccomp,
// and the other is named in a warning.
func TestFirstRuleWins(t *testing.T) {
	data := `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "setns"], "action": "SCMP_ACT_ALLOW"}, {"names": ["setns"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}`
	p, err := ParseJSON("config.json", []byte(data), ImportEnv{Kernel: "6.18.0", Arch: "amd64", FirstRuleWins: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range p.Rules {
		if r.Syscall == "setns" {
			n++
			if r.Action.Kind != ActAllow {
				t.Errorf("setns: %v, want the first rule's allow", r.Action)
			}
		}
	}
	if n != 1 || len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0].Msg, "setns") {
		t.Errorf("rules %d, warnings %v", n, p.Warnings)
	}
}
