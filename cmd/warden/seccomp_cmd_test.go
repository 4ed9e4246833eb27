//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/seccomp"
)

func runSeccompCmd(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(append([]string{"seccomp"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestParseSeccompArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want *seccompArgs
	}{
		{"show", []string{"show", "default"}, &seccompArgs{verb: "show", profile: "default"}},
		{"flags after the profile", []string{"show", "strict", "--allow", "ptrace", "--deny=mkdir,rmdir", "--io-uring"},
			&seccompArgs{verb: "show", profile: "strict", opts: seccomp.Options{Allow: []string{"ptrace"}, Deny: []string{"mkdir", "rmdir"}, IOUring: true}}},
		{"flags before the profile", []string{"show", "--nested-userns", "--errno", "EACCES", "--action", "kill", "default"},
			&seccompArgs{verb: "show", profile: "default", opts: seccomp.Options{NestedUserns: true, Errno: "EACCES", Action: "kill"}}},
		{"export", []string{"export", "default", "--format", "bpf", "-o", "f.bpf", "--ptrace"},
			&seccompArgs{verb: "export", profile: "default", format: "bpf", output: "f.bpf", opts: seccomp.Options{Ptrace: true}}},
		{"export json path", []string{"export", "--format=pfc", "./p.json"},
			&seccompArgs{verb: "export", profile: "./p.json", format: "pfc"}},
		{"help", []string{"help"}, nil},
		{"show -h", []string{"show", "-h"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSeccompArgs(tc.args)
			if err != nil {
				t.Fatalf("parseSeccompArgs(%q) = error %v", tc.args, err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(seccompArgs{})); diff != "" {
				t.Errorf("parseSeccompArgs(%q) (-want +got):\n%s", tc.args, diff)
			}
		})
	}
}

// TestSeccompCmdErrors: every mistake is one "warden: error:" line naming
// what is wrong, exit 125, and nothing on stdout.
func TestSeccompCmdErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"defaultAcion": "SCMP_ACT_ERRNO"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string // substring of the error line
	}{
		{"no subcommand", nil, "missing subcommand"},
		{"unknown subcommand", []string{"compile", "default"}, `unknown subcommand "compile"`},
		{"missing profile", []string{"show"}, "missing PROFILE"},
		{"two profiles", []string{"show", "default", "strict"}, "want one PROFILE, got 2 arguments: default strict"},
		{"unknown flag", []string{"show", "default", "--bogus"}, "--bogus"},
		{"export flag on show", []string{"show", "default", "--format", "bpf"}, "--format"},
		{"unknown profile", []string{"show", "defualt"}, `"defualt": no such built-in profile`},
		{"unknown syscall", []string{"show", "default", "--allow", "keyctll"}, "keyctll"},
		{"bad errno", []string{"show", "default", "--errno", "EWHAT"}, `errno "EWHAT"`},
		{"bad action", []string{"show", "default", "--action", "explode"}, `action "explode"`},
		{"none with allow", []string{"show", "none", "--allow", "ptrace"}, "profile none"},
		{"missing format", []string{"export", "default"}, "missing --format"},
		{"bad format", []string{"export", "default", "--format", "json"}, `--format "json"`},
		{"none has no bpf", []string{"export", "none", "--format", "bpf"}, "no filter"},
		{"bad json", []string{"show", bad}, `unknown field "defaultAcion"`},
		{"missing json", []string{"show", filepath.Join(dir, "nope.json")}, "nope.json"},
		{"unwritable output", []string{"export", "default", "--format", "pfc", "-o", filepath.Join(dir, "no", "such", "dir")}, "no/such/dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runSeccompCmd(tc.args...)
			if code != exitWarden {
				t.Errorf("exit %d, want %d", code, exitWarden)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "warden: error: ") {
				t.Fatalf("stderr %q, want exactly one `warden: error:` line", stderr)
			}
			if !strings.Contains(lines[0], tc.want) {
				t.Errorf("error %q does not contain %q", lines[0], tc.want)
			}
		})
	}
}

func TestSeccompShow(t *testing.T) {
	for _, tc := range []struct {
		name          string
		args          []string
		want, notWant []string // lines (trimmed) that must / must not appear
	}{
		{"default", []string{"default"},
			[]string{"profile default", "errno(EPERM)   keyctl", "errno(EPERM)   ptrace", "errno(EPERM)   io_uring_setup", "errno(ENOSYS)  clone3"},
			[]string{"allow          keyctl"}},
		{"strict", []string{"strict"}, []string{"profile strict", "errno(EPERM)   personality"}, nil},
		{"none", []string{"none"}, []string{"seccomp: off"}, []string{"profile"}},
		{"adjusted", []string{"default", "--allow", "keyctl", "--deny", "mkdir", "--io-uring", "--nested-userns", "--errno", "EACCES"},
			[]string{"allow          keyctl", "errno(EACCES)  mkdir", "allow          io_uring_setup", "allow          unshare", "allow          clone3", "errno(EACCES)  ptrace"},
			[]string{"errno(EPERM)   keyctl", "errno(EPERM)   ptrace", "errno(ENOSYS)  clone3"}},
		{"kill action", []string{"default", "--action", "kill"}, []string{"kill-process   bpf", "known syscalls not listed     kill-process"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runSeccompCmd(append([]string{"show"}, tc.args...)...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			lines := map[string]bool{}
			for _, l := range strings.Split(stdout, "\n") {
				lines[strings.TrimSpace(l)] = true
			}
			for _, w := range tc.want {
				if !lines[w] {
					t.Errorf("output lacks the line %q:\n%s", w, stdout)
				}
			}
			for _, w := range tc.notWant {
				if lines[w] || (w == "profile" && strings.Contains(stdout, w)) {
					t.Errorf("output has %q:\n%s", w, stdout)
				}
			}
		})
	}
}

// TestSeccompExport: the bpf export is byte for byte the program that
// `warden run` would load for the same profile and adjustments, and pfc
// is libseccomp's text with warden's prologue.
func TestSeccompExport(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		profile string
		opts    seccomp.Options
		flags   []string
	}{
		{"default", "default", seccomp.Options{}, nil},
		{"strict", "strict", seccomp.Options{}, nil},
		{"adjusted", "default", seccomp.Options{Allow: []string{"ptrace"}, IOUring: true, Errno: "EACCES"},
			[]string{"--allow", "ptrace", "--io-uring", "--errno", "EACCES"}},
		{"docker", "../../seccomp/testdata/docker-default.json", seccomp.Options{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prof, err := seccomp.Resolve(tc.profile, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			want, err := seccomp.Compile(prof)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, tc.name+".bpf")
			code, _, stderr := runSeccompCmd(append([]string{"export", tc.profile, "--format", "bpf", "-o", file}, tc.flags...)...)
			if code != 0 {
				t.Fatalf("export -o: exit %d: %s", code, stderr)
			}
			got, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("exported %d bytes, want the %d-byte compiled program", len(got), len(want))
			}
			// The same bytes on stdout (not a terminal here).
			code, stdout, _ := runSeccompCmd(append([]string{"export", tc.profile, "--format", "bpf"}, tc.flags...)...)
			if code != 0 || stdout != string(want) {
				t.Errorf("export to stdout: exit %d, %d bytes, want %d", code, len(stdout), len(want))
			}
			ins, err := seccomp.Decode(got)
			if err != nil {
				t.Fatal(err)
			}
			// seccomp(2) and bwrap refuse programs longer than BPF_MAXINSNS.
			if len(ins) == 0 || len(ins) > 4096 {
				t.Errorf("%d instructions, want 1-4096", len(ins))
			}
			// The first instruction loads seccomp_data.arch (offset 4).
			if ins[0].Code != 0x20 || ins[0].K != 4 {
				t.Errorf("first instruction %+v, want ld [4] (arch)", ins[0])
			}

			pfcWant, err := seccomp.ExportPFC(prof)
			if err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr = runSeccompCmd(append([]string{"export", tc.profile, "--format", "pfc"}, tc.flags...)...)
			if code != 0 || stdout != pfcWant {
				t.Errorf("export pfc: exit %d (%s), output differs from ExportPFC", code, stderr)
			}
		})
	}
	code, stdout, _ := runSeccompCmd("export", "none", "--format", "pfc")
	if code != 0 || !strings.Contains(stdout, "seccomp: off") {
		t.Errorf("export none pfc: exit %d %q", code, stdout)
	}
}

// TestSeccompExportRefusesTerminal: raw BPF is not written to a terminal.
func TestSeccompExportRefusesTerminal(t *testing.T) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("needs a pseudo-terminal (/dev/ptmx): %v", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var errb bytes.Buffer
	code := run([]string{"seccomp", "export", "default", "--format", "bpf"}, tty, &errb)
	if code != exitWarden || !strings.Contains(errb.String(), "refusing to write binary BPF to a terminal") {
		t.Errorf("export bpf to a tty: exit %d %q, want 125 and a refusal", code, errb.String())
	}
	// Text is fine on a terminal. Drain the master, or the write blocks
	// once the pty's buffer is full.
	go io.Copy(io.Discard, master)
	errb.Reset()
	if code := run([]string{"seccomp", "export", "default", "--format", "pfc"}, tty, &errb); code != 0 {
		t.Errorf("export pfc to a tty: exit %d %q", code, errb.String())
	}
}
