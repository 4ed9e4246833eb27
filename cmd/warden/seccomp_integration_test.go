//go:build linux && integration

package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// The seccomp tests are written as the attacks the profiles stop. A tiny
// static C program (attackC, built with gcc into a temporary directory and
// shown to the jail with --ro) makes each system call and prints one line
// per call: "call: ok" or "call: ERRNO".
//
// Each attack runs three times:
//   - under the default profile, where it must fail with EPERM;
//   - under a policy that sets [seccomp] errno = "EHWPOISON", an errno no
//     kernel path returns for these calls: seeing it proves that the filter
//     answered, not a capability check or a sysctl that would also say EPERM;
//   - under --seccomp none, the control, which shows what this host's kernel
//     does without warden's filter (logged; it depends on host sysctls).

const attackC = `#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *call, long r) {
	if (r >= 0) {
		printf("%s: ok\n", call);
	} else {
		const char *n = strerrorname_np(errno);
		printf("%s: %s\n", call, n ? n : "?");
	}
	fflush(stdout);
}

static int child_exit(pid_t pid) {
	int st;
	if (waitpid(pid, &st, 0) < 0) return 99;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv) {
	const char *m = argc > 1 ? argv[1] : "";
	if (!strcmp(m, "keyctl")) {
		report("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0));
		report("add_key", syscall(SYS_add_key, "user", "warden-attack", "x", 1, KEY_SPEC_PROCESS_KEYRING));
	} else if (!strcmp(m, "bpf")) {
		union bpf_attr a;
		memset(&a, 0, sizeof a);
		a.map_type = BPF_MAP_TYPE_ARRAY;
		a.key_size = 4;
		a.value_size = 4;
		a.max_entries = 1;
		report("bpf", syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a));
	} else if (!strcmp(m, "perf_event_open")) {
		struct perf_event_attr a;
		memset(&a, 0, sizeof a);
		a.type = PERF_TYPE_SOFTWARE;
		a.size = sizeof a;
		a.config = PERF_COUNT_SW_TASK_CLOCK;
		a.exclude_kernel = 1;
		a.exclude_hv = 1;
		report("perf_event_open", syscall(SYS_perf_event_open, &a, 0, -1, -1, 0));
	} else if (!strcmp(m, "userfaultfd")) {
		report("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY));
	} else if (!strcmp(m, "namespaces")) {
		/* clone first: after a successful unshare we would be an
		 * unmapped uid in a fresh namespace, where it fails anyway. */
		long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
		if (r == 0) _exit(0);
		if (r > 0) child_exit(r);
		report("clone", r);
		report("clone3", syscall(SYS_clone3, NULL, 0));
		report("unshare", unshare(CLONE_NEWUSER));
	} else if (!strcmp(m, "mount") && argc > 2) {
		report("mount", mount("none", argv[2], "tmpfs", 0, NULL));
		report("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
		report("open_tree", syscall(SYS_open_tree, AT_FDCWD, argv[2], 0));
	} else if (!strcmp(m, "handle") && argc > 2) {
		/* The "shocker" escape: open a file by its inode handle, which
		 * bypasses the mount namespace. */
		struct file_handle *fh = calloc(1, sizeof *fh + MAX_HANDLE_SZ);
		int mnt_id;
		fh->handle_bytes = MAX_HANDLE_SZ;
		long r = name_to_handle_at(AT_FDCWD, argv[2], fh, &mnt_id, 0);
		report("name_to_handle_at", r);
		if (r < 0) { /* forge one: the file system's root, inode 2 */
			fh->handle_bytes = 8;
			fh->handle_type = 1;
			memset(fh->f_handle, 0, 8);
			fh->f_handle[0] = 2;
		}
		int mfd = open(argv[2], O_RDONLY | O_DIRECTORY);
		report("open_by_handle_at", open_by_handle_at(mfd, fh, O_RDONLY));
	} else if (!strcmp(m, "x32")) {
		/* getpid (39) with __X32_SYSCALL_BIT: the x32 ABI shares
		 * AUDIT_ARCH_X86_64; only this bit tells it apart. */
		long r;
		__asm__ volatile("syscall" : "=a"(r) : "a"(0x40000000L | 39) : "rcx", "r11", "memory");
		printf("x32: returned %ld\n", r);
	} else if (!strcmp(m, "i386")) {
		long r; /* getpid on i386 is 20 */
		__asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
		printf("i386: returned %ld\n", r);
	} else if (!strcmp(m, "tiocsti")) {
		/* fd 3 is a terminal the caller watches: make it our controlling
		 * terminal (TIOCSTI needs that) and type a command into it. */
		pid_t pid = fork();
		if (pid == 0) {
			if (setsid() < 0 || ioctl(3, TIOCSCTTY, 0) < 0) {
				report("TIOCSCTTY", -1);
				_exit(1);
			}
			report("TIOCSCTTY", 0);
			const char *s = "echo INJECTED\n";
			long r = 0;
			for (const char *p = s; *p && r >= 0; p++) r = ioctl(3, TIOCSTI, p);
			report("TIOCSTI", r);
			_exit(0);
		}
		return child_exit(pid);
	} else if (!strcmp(m, "init")) {
		/* Forged fault signals to the jail's init: queued ones carry
		 * si_code SI_QUEUE, which a Go runtime would not take for a
		 * kill(2) and panic on. warden's init has no handler at all. */
		union sigval v = {0};
		report("sigqueue", sigqueue(1, SIGSEGV, v));
		long fd = syscall(SYS_pidfd_open, 1, 0);
		siginfo_t si;
		memset(&si, 0, sizeof si);
		si.si_signo = SIGBUS;
		si.si_code = SI_QUEUE;
		si.si_pid = getpid();
		si.si_uid = getuid();
		report("pidfd_send_signal", fd < 0 ? fd : syscall(SYS_pidfd_send_signal, (int)fd, SIGBUS, &si, 0));
		usleep(300000);
		printf("init: alive\n");
	} else if (!strcmp(m, "ptrace")) {
		pid_t pid = fork();
		if (pid == 0) {
			pause();
			_exit(0);
		}
		report("ptrace", ptrace(PTRACE_SEIZE, pid, 0, 0));
		int dst = 0;
		struct iovec l = {&dst, sizeof dst}, rm = {&pid, sizeof pid};
		report("process_vm_readv", process_vm_readv(pid, &l, 1, &rm, 1, 0));
		kill(pid, SIGKILL);
		child_exit(pid);
	} else {
		fprintf(stderr, "usage: attack keyctl|bpf|perf_event_open|userfaultfd|namespaces|mount DIR|handle DIR|x32|i386|tiocsti|init|ptrace\n");
		return 2;
	}
	return 0;
}
`

// buildAttack compiles attackC statically into a fresh directory and
// returns that directory and the binary in it.
func buildAttack(t *testing.T) (dir, bin string) {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed: it builds the attack program")
	}
	dir = t.TempDir()
	src := filepath.Join(dir, "attack.c")
	bin = filepath.Join(dir, "attack")
	if err := os.WriteFile(src, []byte(attackC), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("gcc", "-static", "-O1", "-o", bin, src).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "cannot find -lc") {
			t.Skipf("no static libc (libc.a, package libc6-dev): %s", out)
		}
		t.Fatalf("gcc attack.c: %v\n%s", err, out)
	}
	return dir, bin
}

// hwpoisonPolicy writes a policy that re-targets every denial to EHWPOISON.
func hwpoisonPolicy(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "hwpoison.toml")
	body := "extends = \"default\"\n\n[seccomp]\nerrno = \"EHWPOISON\"\n"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// attackCalls parses the attack program's "call: result" lines.
func attackCalls(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			m[k] = v
		}
	}
	return m
}

// retargetEPERM is want with every EPERM replaced by errno.
func retargetEPERM(want map[string]string, errno string) map[string]string {
	m := map[string]string{}
	for k, v := range want {
		if v == "EPERM" {
			v = errno
		}
		m[k] = v
	}
	return m
}

type seccompReport struct {
	Protections []struct {
		Name, State, Detail string
	} `json:"protections"`
	Ending struct {
		Kind       string `json:"kind"`
		ExitStatus int    `json:"exit_status"`
		Signal     string `json:"signal"`
	} `json:"ending"`
	Denials []struct {
		Syscall   string   `json:"syscall"`
		Count     int      `json:"count"`
		FirstArgv []string `json:"first_argv"`
	} `json:"seccomp_denials"`
}

func readSeccompReport(t *testing.T, path string) seccompReport {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no report written: %v", err)
	}
	var rep seccompReport
	if err := json.Unmarshal(doc, &rep); err != nil {
		t.Fatalf("report %s: %v", path, err)
	}
	return rep
}

func (r seccompReport) protection(name string) (state, detail string) {
	for _, p := range r.Protections {
		if p.Name == name {
			return p.State, p.Detail
		}
	}
	return "", ""
}

func TestSeccompAttacks(t *testing.T) {
	e := newEnv(t)
	dir, bin := buildAttack(t)
	poison := hwpoisonPolicy(t)
	for _, tc := range []struct {
		name  string
		flags []string // warden run flags besides the profile
		args  []string // the attack program's arguments
		want  map[string]string
	}{
		// The kernel keyring is not namespaced: keys of the user's host
		// session would be reachable.
		{"keyctl", nil, []string{"keyctl"}, map[string]string{"keyctl": "EPERM", "add_key": "EPERM"}},
		{"bpf", nil, []string{"bpf"}, map[string]string{"bpf": "EPERM"}},
		{"perf_event_open", nil, []string{"perf_event_open"}, map[string]string{"perf_event_open": "EPERM"}},
		// Even the unprivileged user-mode-only flavour, an exploit staple.
		{"userfaultfd", nil, []string{"userfaultfd"}, map[string]string{"userfaultfd": "EPERM"}},
		// clone3 is not a denial but ENOSYS, so libc falls back to clone,
		// whose flags the filter can see.
		{"nested user namespace", nil, []string{"namespaces"},
			map[string]string{"clone": "EPERM", "clone3": "ENOSYS", "unshare": "EPERM"}},
		// With CAP_SYS_ADMIN in the jail's user namespace the kernel itself
		// would allow these (the control shows it); the filter must not.
		{"mount tmpfs with CAP_SYS_ADMIN", []string{"--as-root", "--cap-add", "CAP_SYS_ADMIN"}, []string{"mount", dir},
			map[string]string{"mount": "EPERM", "fsopen": "EPERM", "open_tree": "EPERM"}},
		{"open_by_handle_at", nil, []string{"handle", dir},
			map[string]string{"name_to_handle_at": "EPERM", "open_by_handle_at": "EPERM"}},
		{"ptrace", nil, []string{"ptrace"}, map[string]string{"ptrace": "EPERM", "process_vm_readv": "EPERM"}},
		// The jail's init catches no signal, so the kernel discards every
		// signal sent to it from inside the jail, forged (queued) ones
		// too: no filter is needed, the calls succeed and init lives on.
		{"forged signals to init", nil, []string{"init"}, map[string]string{"sigqueue": "ok", "pidfd_send_signal": "ok", "init": "alive"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv := append([]string{"--ro", dir}, tc.flags...)
			argv = append(append(argv, "--", bin), tc.args...)
			for _, run := range []struct {
				name    string
				profile []string
				want    map[string]string
			}{
				{"default", []string{"--seccomp", "default"}, tc.want},
				{"errno EHWPOISON", []string{"--policy", poison}, retargetEPERM(tc.want, "EHWPOISON")},
			} {
				r := e.run(t, nil, append(append([]string{"run"}, run.profile...), argv...)...)
				if r.code != 0 {
					t.Errorf("%s: exit %d, stderr %q", run.name, r.code, r.stderr)
				}
				if diff := cmp.Diff(run.want, attackCalls(r.stdout)); diff != "" {
					t.Errorf("%s: calls (-want +got):\n%s", run.name, diff)
				}
			}
			r := e.run(t, nil, append([]string{"run", "--seccomp", "none"}, argv...)...)
			t.Logf("control, --seccomp none: exit %d, %v", r.code, attackCalls(r.stdout))
		})
	}
}

// TestForgedSignalControl: without any filter, forged fault signals to
// the jail's init do nothing either: init catches no signal, so the kernel
// discards them (pid_namespaces(7)). (An init with a Go runtime would
// panic on the queued SIGSEGV and end the jail.)
func TestForgedSignalControl(t *testing.T) {
	e := newEnv(t)
	dir, bin := buildAttack(t)
	r := e.run(t, nil, "run", "--seccomp", "none", "--ro", dir, "--", bin, "init")
	want := map[string]string{"sigqueue": "ok", "pidfd_send_signal": "ok", "init": "alive"}
	if diff := cmp.Diff(want, attackCalls(r.stdout)); r.code != 0 || diff != "" {
		t.Errorf("--seccomp none: exit %d stderr %q; calls (-want +got):\n%s", r.code, r.stderr, diff)
	}
}

// TestSeccompAttackControls: without the filter the attacks that this
// kernel allows to an unprivileged user do succeed, so the EPERMs above
// are warden's doing and the attack programs really make the calls.
func TestSeccompAttackControls(t *testing.T) {
	e := newEnv(t)
	dir, bin := buildAttack(t)
	for _, tc := range []struct {
		name  string
		flags []string
		args  []string
		want  map[string]string
	}{
		{"keyctl", nil, []string{"keyctl"}, map[string]string{"keyctl": "ok", "add_key": "ok"}},
		{"nested user namespace", nil, []string{"namespaces"}, map[string]string{"clone": "ok", "clone3": "EINVAL", "unshare": "ok"}},
		{"mount tmpfs with CAP_SYS_ADMIN", []string{"--as-root", "--cap-add", "CAP_SYS_ADMIN"}, []string{"mount", dir},
			map[string]string{"mount": "ok", "fsopen": "ok", "open_tree": "ok"}},
		{"ptrace", nil, []string{"ptrace"}, map[string]string{"ptrace": "ok", "process_vm_readv": "ok"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv := append([]string{"run", "--seccomp", "none", "--ro", dir}, tc.flags...)
			r := e.run(t, nil, append(append(argv, "--", bin), tc.args...)...)
			got := attackCalls(r.stdout)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				// A host (a container runtime's own seccomp profile, a
				// sysctl) can refuse these by itself; say so precisely.
				t.Errorf("without warden's filter (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSeccompOtherABIs: a syscall through another ABI kills the process
// (SIGSYS, exit 159), and the report says seccomp-kill.
func TestSeccompOtherABIs(t *testing.T) {
	e := newEnv(t)
	dir, bin := buildAttack(t)
	for _, abi := range []string{"x32", "i386"} {
		t.Run(abi, func(t *testing.T) {
			ctl := e.run(t, nil, "run", "--seccomp", "none", "--ro", dir, "--", bin, abi)
			if abi == "i386" && ctl.code == 128+int(syscall.SIGSEGV) {
				t.Skip("this kernel does not run int 0x80 from a 64-bit process (ia32 emulation off or unsupported here): SIGSEGV without a filter")
			}
			if ctl.code != 0 || !strings.HasPrefix(ctl.stdout, abi+": returned ") {
				t.Fatalf("control without a filter: exit %d %q %q; want the call to return", ctl.code, ctl.stdout, ctl.stderr)
			}
			path := filepath.Join(t.TempDir(), "r.json")
			r := e.run(t, nil, "run", "--report", path, "--ro", dir, "--", bin, abi)
			if r.code != 128+int(syscall.SIGSYS) {
				t.Errorf("exit %d, want %d (killed by SIGSYS)", r.code, 128+int(syscall.SIGSYS))
			}
			if r.stdout != "" {
				t.Errorf("the program went on after the %s call: %q", abi, r.stdout)
			}
			rep := readSeccompReport(t, path)
			if rep.Ending.Kind != "seccomp-kill" || rep.Ending.Signal != "SIGSYS" || rep.Ending.ExitStatus != 159 {
				t.Errorf("report ending %+v, want seccomp-kill SIGSYS 159", rep.Ending)
			}
		})
	}
}

// openTestPTY returns a new pseudo-terminal's master and its terminal side,
// neither of which is anyone's controlling terminal.
func openTestPTY(t *testing.T) (master, tty int) {
	t.Helper()
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("needs a pseudo-terminal (/dev/ptmx): %v", err)
	}
	t.Cleanup(func() { unix.Close(master) })
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = unix.Open("/dev/pts/"+strconv.Itoa(n), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(tty) })
	return master, tty
}

// ttyPending is what a read of tty returns now ("" when nothing is queued).
func ttyPending(t *testing.T, tty int) string {
	buf := make([]byte, 256)
	n, err := unix.Read(tty, buf)
	if errors.Is(err, unix.EAGAIN) {
		return ""
	}
	if err != nil {
		t.Fatalf("read the terminal: %v", err)
	}
	return string(buf[:n])
}

// TestSeccompTIOCSTI: a payload given a terminal must not type into it.
// The payload makes the test's pty its controlling terminal (as a shell's
// would be) and pushes "echo INJECTED\n" into its input queue with TIOCSTI;
// after warden exits, the test reads that queue the way the user's shell
// would.
func TestSeccompTIOCSTI(t *testing.T) {
	e := newEnv(t)
	dir, bin := buildAttack(t)
	legacy := "1" // kernels before 6.2 have no switch and allow TIOCSTI
	if b, err := os.ReadFile("/proc/sys/dev/tty/legacy_tiocsti"); err == nil {
		legacy = strings.TrimSpace(string(b))
	}
	poison := hwpoisonPolicy(t)
	for _, tc := range []struct {
		name     string
		profile  []string
		want     string // TIOCSTI's result
		injected string // what the user's shell would read afterwards
	}{
		{"default", []string{"--seccomp", "default"}, "EPERM", ""},
		{"errno EHWPOISON", []string{"--policy", poison}, "EHWPOISON", ""},
		{"strict", []string{"--seccomp", "strict"}, "EPERM", ""},
		// The control: the kernel's own answer without a filter.
		{"none", []string{"--seccomp", "none"}, map[string]string{"1": "ok", "0": "EIO"}[legacy],
			map[string]string{"1": "echo INJECTED\n"}[legacy]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, tty := openTestPTY(t)
			// Raw input: the queue is readable byte by byte, no line editing.
			tio, err := unix.IoctlGetTermios(tty, unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			tio.Lflag &^= unix.ICANON | unix.ECHO
			if err := unix.IoctlSetTermios(tty, unix.TCSETS, tio); err != nil {
				t.Fatal(err)
			}
			// The *os.File gets its own descriptor: it closes that one
			// (when closed or garbage-collected), never the raw tty fd,
			// which the cleanup closes. Sharing one number would close
			// it twice, the second time under whatever reused it.
			dup, err := unix.FcntlInt(uintptr(tty), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			f := os.NewFile(uintptr(dup), "pty")
			defer f.Close()
			args := append(append([]string{"run"}, tc.profile...), "--pass-fd", "3", "--ro", dir, "--", bin, "tiocsti")
			cmd := exec.Command(wardenBin(t), args...)
			cmd.Dir, cmd.Env = e.cwd, e.env
			cmd.ExtraFiles = []*os.File{f}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %q", err, out)
			}
			want := map[string]string{"TIOCSCTTY": "ok", "TIOCSTI": tc.want}
			if diff := cmp.Diff(want, attackCalls(string(out))); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if got := ttyPending(t, tty); got != tc.injected {
				t.Errorf("the terminal's input queue holds %q, want %q", got, tc.injected)
			}
		})
	}
}

// TestSeccompAuditNamesAttack: under audit the attack still fails with
// the policy's errno (the auditor answers as the profile would, here
// EHWPOISON, not a fixed EPERM), and warden names each call with its count.
func TestSeccompAuditNamesAttack(t *testing.T) {
	e := newEnv(t)
	dir, bin := buildAttack(t)
	path := filepath.Join(t.TempDir(), "r.json")
	r := e.run(t, nil, "run", "--policy", hwpoisonPolicy(t), "--seccomp-audit", "--report", path, "--ro", dir, "--", bin, "keyctl")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if diff := cmp.Diff(map[string]string{"keyctl": "EHWPOISON", "add_key": "EHWPOISON"}, attackCalls(r.stdout)); diff != "" {
		t.Errorf("calls under audit (-want +got):\n%s", diff)
	}
	for _, s := range []string{"seccomp denied keyctl ×1", "seccomp denied add_key ×1", bin + " keyctl"} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
		}
	}
	rep := readSeccompReport(t, path)
	got := map[string]int{}
	for _, d := range rep.Denials {
		got[d.Syscall] = d.Count
		if len(d.FirstArgv) != 2 || d.FirstArgv[0] != bin {
			t.Errorf("denial %s: first argv %q, want [%s keyctl]", d.Syscall, d.FirstArgv, bin)
		}
	}
	if diff := cmp.Diff(map[string]int{"keyctl": 1, "add_key": 1}, got); diff != "" {
		t.Errorf("report seccomp_denials (-want +got):\n%s", diff)
	}
}

// TestSeccompNone: --seccomp none really loads no filter, and the report
// says so; default loads exactly one.
func TestSeccompNone(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		profile, want, state string
	}{
		{"none", "Seccomp:\t0\nSeccomp_filters:\t0\n", "off"},
		{"default", "Seccomp:\t2\nSeccomp_filters:\t1\n", "enforced"},
		{"strict", "Seccomp:\t2\nSeccomp_filters:\t1\n", "enforced"},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r.json")
			r := e.run(t, nil, "run", "--seccomp", tc.profile, "--report", path, "--", "grep", "^Seccomp", "/proc/self/status")
			if r.code != 0 || r.stdout != tc.want {
				t.Errorf("exit %d, /proc/self/status %q, want %q (stderr %q)", r.code, r.stdout, tc.want, r.stderr)
			}
			if state, detail := readSeccompReport(t, path).protection("seccomp"); state != tc.state || !strings.Contains(detail, tc.profile) {
				t.Errorf("report seccomp protection %q %q, want %s naming %s", state, detail, tc.state, tc.profile)
			}
		})
	}
}

// TestSeccompDefaultWorkloads: the default profile is an allow-list; real
// tools must still work under it.
func TestSeccompDefaultWorkloads(t *testing.T) {
	// go lives outside the usual PATH in many installs; look where the
	// test's own go is, and in the standard place.
	path := "/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin"
	if g, err := exec.LookPath("go"); err == nil {
		path = filepath.Dir(g) + ":" + path
	}
	for _, tc := range []struct {
		name, tool string
		files      map[string]string
		script     string
		want       string
	}{
		{"python3", "python3", nil, `python3 -c '
import hashlib, json, os, sqlite3, subprocess, tempfile, threading
out = []
t = threading.Thread(target=lambda: out.append(subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip()))
t.start(); t.join()
db = sqlite3.connect(":memory:"); db.execute("create table t(x)"); db.execute("insert into t values (42)")
with tempfile.NamedTemporaryFile() as f:
    f.write(os.urandom(16)); f.flush()
print(out[0], db.execute("select x from t").fetchone()[0], json.dumps({"ok": True}), len(hashlib.sha256(b"x").hexdigest()))
'`, `child 42 {"ok": true} 64`},
		{"gcc", "gcc", map[string]string{"hello.c": "#include <stdio.h>\n#include <pthread.h>\nstatic void *f(void *a) { return a; }\nint main(void) { pthread_t t; void *r; pthread_create(&t, 0, f, \"threads\"); pthread_join(t, &r); printf(\"hello from gcc with %s\\n\", (char *)r); return 0; }\n"},
			`gcc -O2 -pthread -o hello hello.c && ./hello`, "hello from gcc with threads"},
		// Offline and hermetic: the build cache and GOPATH are on the
		// jail's private /tmp, no proxy, no toolchain download.
		{"go build", "go", map[string]string{
			"go.mod":  "module example.com/hello\n\ngo 1.21\n",
			"main.go": "package main\n\nimport (\n\t\"fmt\"\n\t\"os/exec\"\n\t\"sync\"\n)\n\nfunc main() {\n\tvar wg sync.WaitGroup\n\tvar out []byte\n\twg.Add(1)\n\tgo func() { defer wg.Done(); out, _ = exec.Command(\"echo\", \"child\").Output() }()\n\twg.Wait()\n\tfmt.Printf(\"hello from go, %s\", out)\n}\n"},
			`export GOCACHE=/tmp/gocache GOPATH=/tmp/gopath GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local GOTELEMETRY=off && go build -o hello . && ./hello`,
			"hello from go, child"},
		{"git", "git", map[string]string{"README": "hello\n"},
			`git init -q repo && cp README repo/ && cd repo && git add README && git -c user.name=t -c user.email=t@example.com commit -qm first && git log --format=%s && git status --porcelain | wc -l`,
			"first\n0"},
		{"make", "make", map[string]string{"Makefile": "all: a.txt b.txt\n\tcat a.txt b.txt > all.txt\n%.txt:\n\techo $* > $@\n"},
			`make -s -j2 && cat all.txt`, "a\nb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			for name, body := range tc.files {
				if err := os.WriteFile(filepath.Join(e.cwd, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			script := "command -v " + tc.tool + " >/dev/null || { echo MISSING; exit 0; }; " + tc.script
			r := e.run(t, nil, "run", "--seccomp", "default", "--timeout", "5m", "--env", "PATH="+path, "--", "sh", "-c", script)
			if strings.TrimSpace(r.stdout) == "MISSING" {
				t.Skipf("%s is not on PATH inside the jail (%s)", tc.tool, path)
			}
			if r.code != 0 || strings.TrimSpace(r.stdout) != tc.want {
				t.Errorf("exit %d\nstdout %q\nwant   %q\nstderr %s", r.code, r.stdout, tc.want, r.stderr)
			}
		})
	}
}

// TestSeccompExportBwrap: the exported BPF is what bwrap's --seccomp FD
// takes, and it stops the same attacks there.
func TestSeccompExportBwrap(t *testing.T) {
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bwrap not installed (package bubblewrap)")
	}
	e := newEnv(t)
	_, bin := buildAttack(t)
	bpf := filepath.Join(t.TempDir(), "default.bpf")
	if r := e.run(t, nil, "seccomp", "export", "default", "--format", "bpf", "-o", bpf); r.code != 0 {
		t.Fatalf("export: exit %d %s", r.code, r.stderr)
	}
	bwrap := func(withFilter bool, args ...string) (int, string) {
		t.Helper()
		argv := []string{"--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"}
		cmd := exec.Command("bwrap")
		if withFilter {
			f, err := os.Open(bpf)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cmd.ExtraFiles = []*os.File{f}
			argv = append(argv, "--seccomp", "3")
		}
		cmd.Args = append(append(append(cmd.Args, argv...), "--", bin), args...)
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatalf("bwrap: %v", err)
		}
		return 0, string(out)
	}
	if code, out := bwrap(false, "keyctl"); code != 0 || attackCalls(out)["keyctl"] == "" {
		t.Skipf("bwrap does not run here (exit %d, %q): it needs unprivileged user namespaces", code, out)
	}
	code, out := bwrap(true, "keyctl")
	if diff := cmp.Diff(map[string]string{"keyctl": "EPERM", "add_key": "EPERM"}, attackCalls(out)); code != 0 || diff != "" {
		t.Errorf("bwrap --seccomp with the export: exit %d, calls (-want +got):\n%s", code, diff)
	}
	code, out = bwrap(true, "namespaces")
	if diff := cmp.Diff(map[string]string{"clone": "EPERM", "clone3": "ENOSYS", "unshare": "EPERM"}, attackCalls(out)); code != 0 || diff != "" {
		t.Errorf("bwrap --seccomp namespaces: exit %d, calls (-want +got):\n%s", code, diff)
	}
	// bwrap reports a child killed by signal N as 128+N, as warden does.
	if code, out = bwrap(true, "x32"); code != 128+int(syscall.SIGSYS) || out != "" {
		t.Errorf("bwrap --seccomp x32: exit %d %q, want %d and no output", code, out, 128+int(syscall.SIGSYS))
	}
}

// TestSeccompRequestCacheTampered: a filter in warden's request cache that
// does not match its profile (here: replaced by "allow everything", as a
// jail that once had write access to the cache could leave it) is never
// run under: warden refuses the run, removes the entry, and the next run
// compiles the filter afresh.
func TestSeccompRequestCacheTampered(t *testing.T) {
	e := newEnv(t)
	if r := e.run(t, nil, "run", "--", "true"); r.code != 0 {
		t.Fatalf("first run: exit %d %s", r.code, r.stderr)
	}
	reqs, _ := filepath.Glob(filepath.Join(e.home, ".cache", "warden", "seccomp", "*.req"))
	if len(reqs) != 1 {
		t.Fatalf("request cache entries: %v, want one", reqs)
	}
	b, err := os.ReadFile(reqs[0])
	if err != nil {
		t.Fatal(err)
	}
	// The program starts at byte 72: make its first instruction RET ALLOW.
	copy(b[72:], []byte{0x06, 0, 0, 0, 0, 0, 0xff, 0x7f})
	if err := os.WriteFile(reqs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.run(t, nil, "run", "--", "sh", "-c", "echo RAN")
	if r.code != 125 || strings.Contains(r.stdout, "RAN") || !strings.Contains(r.stderr, "does not match the profile") {
		t.Errorf("run with a tampered cached filter: exit %d stdout %q stderr %q; want 125 before the command runs", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(reqs[0]); !os.IsNotExist(err) {
		t.Errorf("the tampered entry is still there: %v", err)
	}
	r = e.run(t, nil, "run", "--", "python3", "-c", "import ctypes,os; l=ctypes.CDLL(None, use_errno=True); print(l.syscall(250, 0, 0, 0, 0, 0), ctypes.get_errno())")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "-1 1" {
		t.Errorf("next run: exit %d stdout %q stderr %q; want keyctl denied with EPERM", r.code, r.stdout, r.stderr)
	}
}

// TestPolicyPtraceKey: `[seccomp] ptrace = true` in a policy (documented in
// docs/seccomp.md) loads and allows ptrace and process_vm_readv to the
// jail's own processes; without it both are denied.
func TestPolicyPtraceKey(t *testing.T) {
	e := newEnv(t)
	dir, bin := buildAttack(t)
	pol := filepath.Join(e.home, "debug.toml")
	if err := os.WriteFile(pol, []byte("extends = \"default\"\n[seccomp]\nptrace = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.run(t, nil, "run", "--policy", pol, "--ro", dir, "--", bin, "ptrace")
	if d := cmp.Diff(map[string]string{"ptrace": "ok", "process_vm_readv": "ok"}, attackCalls(r.stdout)); r.code != 0 || d != "" {
		t.Errorf("ptrace = true: exit %d stderr %q; calls (-want +got):\n%s", r.code, r.stderr, d)
	}
	r = e.run(t, nil, "run", "--ro", dir, "--", bin, "ptrace")
	if d := cmp.Diff(map[string]string{"ptrace": "EPERM", "process_vm_readv": "EPERM"}, attackCalls(r.stdout)); d != "" {
		t.Errorf("default: calls (-want +got):\n%s", d)
	}
}
