//go:build linux && integration

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox/schematest"
)

// These tests run the real static binary ($WARDEN_BIN, built by make) as
// the unprivileged user the test script switched to.

func wardenBin(t *testing.T) string {
	t.Helper()
	b := os.Getenv("WARDEN_BIN")
	if b == "" {
		t.Fatal("WARDEN_BIN is not set: run the integration tests through scripts/test.sh (or set it to bin/warden)")
	}
	if os.Getuid() == 0 {
		t.Fatal("integration tests must run as an unprivileged user (scripts/test.sh switches to one)")
	}
	return b
}

type result struct {
	code           int
	stdout, stderr string
}

// sandboxEnv is a caller's environment with a fake $HOME holding secrets.
type sandboxEnv struct {
	home, cwd string
	env       []string
}

func newEnv(t *testing.T) *sandboxEnv {
	home := t.TempDir()
	cwd := filepath.Join(home, "proj")
	for _, d := range []string{cwd, filepath.Join(home, ".ssh")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_rsa"), []byte("PRIVATE KEY\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &sandboxEnv{home: home, cwd: cwd, env: []string{
		"HOME=" + home, "PATH=/usr/local/bin:/usr/bin:/bin", "USER=" + os.Getenv("USER"), "LANG=C.UTF-8",
		"AWS_SECRET_ACCESS_KEY=hunter2", "GITHUB_TOKEN=ghp_secret", "SSH_AUTH_SOCK=/tmp/agent.sock",
		"DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1/bus",
	}}
}

func (e *sandboxEnv) run(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(wardenBin(t), args...)
	cmd.Dir, cmd.Env = e.cwd, e.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run warden: %v", err)
	}
	return r
}

func TestJailView(t *testing.T) {
	e := newEnv(t)
	r := e.run(t, nil, "run", "--", "sh", "-c",
		`id -u; hostname; cat /proc/self/uid_map | wc -l; ps -e -o pid= | wc -l; cat /proc/1/comm; pwd; ls -A "$HOME"; ls /proc/self/fd`)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 7 {
		t.Fatalf("output too short:\n%s", r.stdout)
	}
	if lines[0] != strconv.Itoa(os.Getuid()) {
		t.Errorf("uid inside = %s, want the caller's %d", lines[0], os.Getuid())
	}
	if lines[1] != "warden" {
		t.Errorf("hostname = %s, want warden", lines[1])
	}
	if n, _ := strconv.Atoi(strings.TrimSpace(lines[3])); n > 4 {
		t.Errorf("ps -e shows %d processes; host processes leak into the jail:\n%s", n, r.stdout)
	}
	if lines[4] != "warden-init" {
		t.Errorf("PID 1 is %q, want warden-init", lines[4])
	}
	if lines[5] != e.cwd {
		t.Errorf("pwd = %s, want %s", lines[5], e.cwd)
	}
	if lines[6] != "proj" {
		t.Errorf("$HOME inside lists %q, want only the re-bound current directory (proj)", lines[6])
	}
	if fds := strings.Fields(strings.Join(lines[7:], " ")); len(fds) != 4 { // 0 1 2 and ls's own
		t.Errorf("fds in the payload: %v, want 0 1 2 (+ the one ls opens)", fds)
	}
}

func TestNegativeSecurity(t *testing.T) {
	e := newEnv(t)
	port, _ := hostServer(t)
	for _, tc := range []struct {
		name, script, mustNot string
	}{
		{"ssh key hidden", `cat "$HOME/.ssh/id_rsa" 2>&1; ls -A "$HOME"`, "PRIVATE KEY"},
		{"read-only system", `touch /usr/warden-x 2>&1; echo > /etc/warden-x 2>&1`, "touch: exit 0"},
		{"host loopback unreachable", fmt.Sprintf(`exec 3<>/dev/tcp/127.0.0.1/%d && cat <&3`, port), "HOST-LOOPBACK"},
		{"secrets not in env", `env`, "hunter2"},
		{"github token not in env", `env`, "ghp_secret"},
		{"ssh agent not in env", `env`, "SSH_AUTH_SOCK"},
		{"dbus not in env", `env`, "DBUS_SESSION"},
		{"proc 1 root is not the host", `ls /proc/1/root/ 2>&1; cat /proc/1/root` + e.home + `/.ssh/id_rsa 2>&1`, "PRIVATE KEY"},
		{"no capabilities", `grep -E '^Cap(Eff|Prm|Bnd|Amb):' /proc/self/status`, "000001ff"},
		{"no_new_privs", `grep NoNewPrivs /proc/self/status`, "NoNewPrivs:\t0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.run(t, nil, "run", "--", "bash", "-c", tc.script)
			if strings.Contains(r.stdout+r.stderr, tc.mustNot) {
				t.Errorf("output contains %q:\n%s%s", tc.mustNot, r.stdout, r.stderr)
			}
		})
	}
	r := e.run(t, nil, "run", "--", "touch", "/usr/warden-x")
	if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
		t.Errorf("touch under /usr: exit %d, %q; want EROFS", r.code, r.stderr)
	}
	r = e.run(t, nil, "run", "--", "sh", "-c", "grep -E '^Cap(Eff|Bnd)' /proc/self/status")
	if strings.Count(r.stdout, "0000000000000000") != 2 {
		t.Errorf("capabilities not empty:\n%s", r.stdout)
	}
	r = e.run(t, nil, "run", "--as-root", "--", "sh", "-c", "id -u; grep -E '^Cap(Eff|Bnd)' /proc/self/status")
	if !strings.HasPrefix(r.stdout, "0\n") || strings.Count(r.stdout, "0000000000000000") != 2 {
		t.Errorf("--as-root: want uid 0 with empty capability sets, got:\n%s%s", r.stdout, r.stderr)
	}
}

// TestInitIsUntouchable: the payload (same uid as init inside) cannot
// ptrace warden's init, read its memory or environment, or write through
// /proc/1/exe to the warden binary (CVE-2019-5736's shape).
func TestInitIsUntouchable(t *testing.T) {
	e := newEnv(t)
	script := `
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
r = libc.ptrace(16, 1, 0, 0)  # PTRACE_ATTACH
print("ptrace", r, os.strerror(ctypes.get_errno()))
for p, mode in (("/proc/1/exe", "wb"), ("/proc/1/mem", "rb"), ("/proc/1/environ", "rb"), ("/proc/1/root/", None)):
    try:
        if mode is None:
            print(p, "listed", os.listdir(p)[:3])
        else:
            with open(p, mode) as f:
                print(p, "OPENED")
    except OSError as ex:
        print(p, "denied", ex.strerror)
`
	r := e.run(t, nil, "run", "--", "python3", "-c", script)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "OPENED") || strings.Contains(r.stdout, "listed") {
		t.Errorf("the payload reached init:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "ptrace -1") {
		t.Errorf("PTRACE_ATTACH to init did not fail:\n%s", r.stdout)
	}
	// --seccomp none takes the ptrace denial away; init must still be
	// safe through non-dumpability and the empty capability sets.
	r = e.run(t, nil, "run", "--seccomp", "none", "--", "python3", "-c", script)
	if strings.Contains(r.stdout, "OPENED") || strings.Contains(r.stdout, "listed") || !strings.Contains(r.stdout, "ptrace -1") {
		t.Errorf("without seccomp the payload reached init:\n%s%s", r.stdout, r.stderr)
	}
}

// TestSetuidGainsNothing: a setuid-root binary in the jail's view runs with
// the caller's ids and no capabilities (no_new_privs, nosuid mounts, and
// root is not even mapped with a one-id map).
func TestSetuidGainsNothing(t *testing.T) {
	e := newEnv(t)
	var suid string
	for _, c := range []string{"/usr/bin/newuidmap", "/usr/bin/passwd", "/usr/bin/su", "/usr/bin/mount"} {
		if fi, err := os.Stat(c); err == nil && fi.Mode()&os.ModeSetuid != 0 {
			suid = c
			break
		}
	}
	if suid == "" {
		t.Skip("no setuid-root binary on this host to try")
	}
	// /proc/self/status of a setuid program shows its effective ids; run
	// it through the kernel's view: exec the binary with an argument that
	// makes it fail fast, and check what the kernel gave it via strace-free
	// means — the mount flags and NoNewPrivs that govern it.
	r := e.run(t, nil, "run", "--", "sh", "-c",
		"grep NoNewPrivs /proc/self/status; awk '$5==\"/usr\" {print $6}' /proc/self/mountinfo; "+suid+" --help >/dev/null 2>&1; "+
			"cp "+suid+" ./copy && chmod u+s ./copy && stat -c %A ./copy")
	if !strings.Contains(r.stdout, "NoNewPrivs:\t1") || !strings.Contains(r.stdout, "nosuid") {
		t.Errorf("setuid protections missing:\n%s%s", r.stdout, r.stderr)
	}
	// A setuid copy made inside is owned by the caller, never root.
	if strings.Contains(r.stdout, "rws") {
		r2 := e.run(t, nil, "run", "--", "sh", "-c", "stat -c %u ./copy")
		if strings.TrimSpace(r2.stdout) == "0" {
			t.Errorf("a setuid copy inside the jail is owned by root")
		}
	}
	// su to root must fail: no privilege to gain.
	if _, err := os.Stat("/usr/bin/su"); err == nil {
		r = e.run(t, []byte("x\n"), "run", "--", "sh", "-c", "su -c 'id -u' root; echo rc=$?")
		if strings.Contains(r.stdout, "\n0\n") || strings.HasPrefix(r.stdout, "0\n") {
			t.Errorf("su gained root in the jail: %q", r.stdout)
		}
	}
}

func TestExitStatus(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		args []string
		want int
		err  string
	}{
		{"zero", []string{"true"}, 0, ""},
		{"three", []string{"sh", "-c", "exit 3"}, 3, ""},
		{"sigint", []string{"sh", "-c", "kill -INT $$"}, 130, ""},
		{"sigkill", []string{"sh", "-c", "kill -KILL $$"}, 137, ""},
		{"not executable", []string{"/etc/passwd"}, 126, `exec "/etc/passwd": permission denied`},
		{"not found", []string{"pyhton3"}, 127, `exec "pyhton3": no such file or directory`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.run(t, nil, append([]string{"run", "--"}, tc.args...)...)
			if r.code != tc.want {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tc.want, r.stderr)
			}
			if tc.err != "" && !strings.Contains(r.stderr, tc.err) {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, tc.err)
			}
		})
	}
	r := e.run(t, nil, "run", "--bogus", "--", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "--bogus") {
		t.Errorf("bad flag: exit %d %q, want 125 naming the flag", r.code, r.stderr)
	}
	r = e.run(t, nil, "run", "--ro", "/does/not/exist", "--", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "warden: error: --ro /does/not/exist") {
		t.Errorf("missing --ro source: exit %d %q, want 125 naming the flag", r.code, r.stderr)
	}
	start := time.Now()
	r = e.run(t, nil, "run", "--timeout", "300ms", "--kill-grace", "300ms", "--", "sh", "-c", "trap '' TERM; sleep 30")
	if r.code != 124 || time.Since(start) > 5*time.Second {
		t.Errorf("timeout: exit %d after %v, want 124 within timeout+grace+1s", r.code, time.Since(start))
	}
}

func TestStdio(t *testing.T) {
	e := newEnv(t)
	r := e.run(t, []byte("hi\n"), "run", "--", "cat")
	if r.stdout != "hi\n" {
		t.Errorf("echo hi | warden run -- cat = %q", r.stdout)
	}
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = byte(i*7 + i/251)
	}
	r = e.run(t, big, "run", "--", "cat")
	if sha256.Sum256([]byte(r.stdout)) != sha256.Sum256(big) {
		t.Errorf("8 MiB through cat: checksum differs (got %d bytes)", len(r.stdout))
	}
	r = e.run(t, nil, "run", "--", "sh", "-c", "echo out; echo err >&2")
	if r.stdout != "out\n" || r.stderr != "err\n" {
		t.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}
}

func TestFlags(t *testing.T) {
	e := newEnv(t)
	data := t.TempDir()
	os.WriteFile(filepath.Join(data, "in.txt"), []byte("input\n"), 0o644)
	out := t.TempDir()
	r := e.run(t, nil, "run", "--hostname", "ci", "--ro", data+":/data", "--rw", out+":/out", "--tmpfs", "/scratch",
		"--chdir", "/data", "--env", "FOO=bar", "--", "sh", "-c",
		`hostname; pwd; cat in.txt; echo $FOO; cp in.txt /out/copied; touch /scratch/x && echo scratch-ok; touch /data/y 2>/dev/null || echo data-ro`)
	want := "ci\n/data\ninput\nbar\nscratch-ok\ndata-ro\n"
	if r.stdout != want || r.code != 0 {
		t.Errorf("got exit %d\n%s%s\nwant\n%s", r.code, r.stdout, r.stderr, want)
	}
	if b, err := os.ReadFile(filepath.Join(out, "copied")); err != nil || string(b) != "input\n" {
		t.Errorf("--rw did not write through to the host: %q %v", b, err)
	}
	secret := filepath.Join(data, "secret")
	os.WriteFile(secret, []byte("TOPSECRET"), 0o644)
	r = e.run(t, nil, "run", "--ro", data+":"+data, "--hide", secret, "--", "cat", secret)
	if strings.Contains(r.stdout, "TOPSECRET") {
		t.Errorf("--hide: file still readable: %q", r.stdout)
	}
	r = e.run(t, nil, "run", "--map=single", "--", "sh", "-c", "cat /proc/self/uid_map | wc -l; cat /proc/self/setgroups")
	if r.stdout != "1\ndeny\n" {
		t.Errorf("--map=single: %q, want one map line and setgroups deny", r.stdout)
	}
}

func TestSubordinateIDs(t *testing.T) {
	if b, _ := os.ReadFile("/etc/subuid"); !strings.Contains(string(b), os.Getenv("USER")+":") {
		t.Skipf("no /etc/subuid entry for %s (scripts/setup.sh adds one for the test user)", os.Getenv("USER"))
	}
	if _, err := exec.LookPath("newuidmap"); err != nil {
		t.Skip("newuidmap not installed (package uidmap)")
	}
	e := newEnv(t)
	r := e.run(t, nil, "run", "--map=subuid", "--cap-add", "CAP_CHOWN", "--", "sh", "-c",
		"touch f && chown 1234:1234 f && stat -c %u:%g f; cat /proc/self/setgroups")
	if r.code != 0 || r.stdout != "1234:1234\nallow\n" {
		t.Errorf("chown inside a subuid jail: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	// Without the capability the same chown must fail: caps are empty by
	// default even though the ids are mapped.
	r = e.run(t, nil, "run", "--map=subuid", "--", "sh", "-c", "touch g && chown 1234 g")
	if r.code == 0 {
		t.Error("chown without --cap-add CAP_CHOWN succeeded")
	}
	// With a one-id map there is no other id to give a file to.
	r = e.run(t, nil, "run", "--map=single", "--cap-add", "chown", "--", "sh", "-c", "touch h && chown 1234 h")
	if r.code == 0 {
		t.Error("chown to an unmapped id succeeded under --map=single")
	}
}

func TestNoSurvivors(t *testing.T) {
	e := newEnv(t)
	marker := fmt.Sprintf("%d", 100000+time.Now().UnixNano()%800000)
	r := e.run(t, nil, "run", "--", "sh", "-c", "setsid sleep "+marker+" & sleep 0.1")
	if r.code != 0 {
		t.Fatalf("exit %d %s", r.code, r.stderr)
	}
	if pids := findProc(t, "sleep "+marker); len(pids) > 0 {
		t.Errorf("a setsid'd grandchild outlived the run: %v", pids)
	}

	marker2 := fmt.Sprintf("%d", 100000+time.Now().UnixNano()%800000+1)
	cmd := exec.Command(wardenBin(t), "run", "--", "sh", "-c", "setsid sleep "+marker2+" & sleep "+marker2)
	cmd.Dir, cmd.Env = e.cwd, e.env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Count the two sleeps by their exact command line: warden's own and
	// sh's contain the marker too, and one read during an exec can miss a
	// process.
	sleeps := "sleep\x00" + marker2 + "\x00"
	deadline := time.Now().Add(5 * time.Second)
	for len(findExact(sleeps)) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(findExact(sleeps)); n < 2 {
		t.Fatalf("jail processes did not start (%d found)", n)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	deadline = time.Now().Add(2 * time.Second)
	for len(findProc(t, "sleep "+marker2)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if pids := findProc(t, "sleep "+marker2); len(pids) > 0 {
		t.Errorf("after kill -9 of warden, jail processes remain: %v", pids)
	}
}

func findProc(t *testing.T, needle string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), needle) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// TestInteractive drives bash in a real terminal (tmux): Ctrl-C must stop
// the job inside the jail and leave the shell (and warden) running.
func TestInteractive(t *testing.T) {
	e := newEnv(t)
	tmux, waitFor := tmuxSession(t, e.cwd,
		"env -i HOME="+e.home+" PATH=/usr/bin:/bin TERM=xterm "+wardenBin(t)+" run -- bash --norc --noprofile; echo WARDEN-EXIT=$?; sleep 30")
	// Split in the typed line, so that only the prompt itself matches.
	tmux("send-keys", "PS1='ja''il$ '", "Enter")
	waitFor("\njail$")
	tmux("send-keys", "hostname; sleep 1101", "Enter")
	// Ctrl-C is for the sleep: wait until it holds the terminal.
	waitForeground(t, "sleep\x001101\x00")
	tmux("send-keys", "C-c")
	tmux("send-keys", "echo alive-$((20+22))", "Enter")
	screen := waitFor("alive-42")
	if strings.Contains(screen, "WARDEN-EXIT") {
		t.Fatalf("Ctrl-C ended warden instead of the job inside:\n%s", screen)
	}
	tmux("send-keys", "exit 7", "Enter")
	waitFor("WARDEN-EXIT=7")
}

func TestReport(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		args   []string
		kind   string
		status int
	}{
		{"exit", []string{"--", "sh", "-c", "exit 3"}, "exit", 3},
		{"signal", []string{"--", "sh", "-c", "kill -TERM $$"}, "signal", 143},
		{"timeout", []string{"--timeout", "200ms", "--kill-grace", "200ms", "--", "sleep", "10"}, "timeout", 124},
		{"setup-error", []string{"--ro", "/does/not/exist", "--", "true"}, "setup-error", 125},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".json")
			r := e.run(t, nil, append([]string{"run", "--report", path}, tc.args...)...)
			if r.code != tc.status {
				t.Errorf("exit %d, want %d: %s", r.code, tc.status, r.stderr)
			}
			doc, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("no report written: %v", err)
			}
			errs, err := schematest.Validate("../../docs/report.schema.json", doc)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range errs {
				t.Error(e)
			}
			var rep struct {
				Ending struct {
					Kind       string `json:"kind"`
					ExitStatus int    `json:"exit_status"`
				} `json:"ending"`
				Policy struct{ Name, Source, Hash string } `json:"policy"`
			}
			json.Unmarshal(doc, &rep)
			if rep.Ending.Kind != tc.kind || rep.Ending.ExitStatus != tc.status {
				t.Errorf("report ending %+v, want %s/%d", rep.Ending, tc.kind, tc.status)
			}
			if tc.kind != "setup-error" && (rep.Policy.Name != "default" || rep.Policy.Source != "builtin:default" || len(rep.Policy.Hash) < 32) {
				t.Errorf("report policy %+v, want the built-in default with its hash", rep.Policy)
			}
		})
	}
	// fd:N: the report goes to an inherited fd, which the payload itself
	// must not see.
	cmd := exec.Command(wardenBin(t), "run", "--report", "fd:3", "--", "sh", "-c", "ls /proc/self/fd")
	cmd.Dir, cmd.Env = e.cwd, e.env
	pr, pw, _ := os.Pipe()
	cmd.ExtraFiles = []*os.File{pw}
	out, err := cmd.Output()
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := io.ReadAll(pr)
	if !bytes.Contains(doc, []byte(`"kind": "exit"`)) {
		t.Errorf("fd:3 report: %s", doc)
	}
	if n := len(strings.Fields(string(out))); n != 4 { // 0 1 2 + ls's own

		t.Errorf("payload fds %q: the report fd leaked into the payload", out)
	}
}

func TestPassFDAndRlimits(t *testing.T) {
	e := newEnv(t)
	f, _ := os.CreateTemp(t.TempDir(), "pass")
	f.WriteString("passed-data\n")
	f.Seek(0, 0)
	leak, _ := os.Open("/etc/hostname") // opened on purpose, not passed
	defer leak.Close()
	dirfd, _ := os.Open(e.home) // the CVE-2024-21626 shape: a host directory fd
	defer dirfd.Close()
	cmd := exec.Command(wardenBin(t), "run", "--pass-fd", "3", "--rlimit", "nofile=64", "--", "sh", "-c",
		"cat <&3; ls /proc/self/fd | tr '\\n' ' '; echo; ulimit -n; ulimit -c; ls /proc/self/fd/5/ 2>&1 | head -1")
	cmd.Dir, cmd.Env = e.cwd, e.env
	cmd.ExtraFiles = []*os.File{f, leak, dirfd} // fds 3, 4, 5 in warden
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	lines := strings.Split(string(out), "\n")
	if lines[0] != "passed-data" {
		t.Errorf("--pass-fd 3: got %q", lines[0])
	}
	if fds := strings.Fields(lines[1]); len(fds) != 5 { // 0 1 2 3 + ls's own
		t.Errorf("payload fds %v, want 0-3 (+ ls's own): the unpassed fds leaked", fds)
	}
	if lines[2] != "64" || lines[3] != "0" {
		t.Errorf("nofile %q core %q, want 64 and 0", lines[2], lines[3])
	}
	if strings.Contains(lines[4], ".ssh") || strings.Contains(lines[4], "proj") {
		t.Errorf("a leaked directory fd reaches the host tree: %q", lines[4])
	}
}

// TestPassFDNotInherited: --pass-fd may only name a descriptor warden
// inherited. Warden's own (the plan pipe, the sync socket whose other end
// is the parent, the runtime's epoll, the pipe go-fuse's initialiser keeps
// at fd 3) take the first free numbers, so a
// number the caller did not open must be refused, not handed to the jail;
// the same for --report fd:N. The run report is still written.
func TestPassFDNotInherited(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "r.json")
	for fd := 3; fd <= 12; fd++ {
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			continue // open here without close-on-exec: warden inherits it
		}
		r := e.run(t, nil, "run", "--report", path, "--pass-fd", strconv.Itoa(fd), "--", "sh", "-c", "ls -l /proc/self/fd/3")
		if r.code != 125 || !strings.Contains(r.stderr, "warden did not inherit an open file descriptor") || r.stdout != "" {
			t.Errorf("--pass-fd %d, not inherited: exit %d stdout %q stderr %q; want 125 and a refusal", fd, r.code, r.stdout, r.stderr)
		}
		rep := readSeccompReport(t, path)
		if rep.Ending.Kind != "setup-error" || rep.Ending.ExitStatus != 125 {
			t.Errorf("--pass-fd %d: report ending %+v, want setup-error 125", fd, rep.Ending)
		}
	}
	for _, fd := range []string{"3", "7"} {
		r := e.run(t, nil, "run", "--report", "fd:"+fd, "--", "true")
		if r.code != 125 || !strings.Contains(r.stderr, "--report fd:"+fd+": not a file descriptor warden inherited") {
			t.Errorf("--report fd:%s, not inherited: exit %d stderr %q", fd, r.code, r.stderr)
		}
	}
}

// TestSeccompAudit: with --seccomp-audit the denied syscall still fails
// with the profile's errno, and warden names it, its count and the process.
func TestSeccompAudit(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "r.json")
	r := e.run(t, nil, "run", "--seccomp-audit", "--report", path, "--", "python3", "-c",
		"import ctypes; l=ctypes.CDLL(None, use_errno=True); r=l.syscall(250,0,0,0,0); print(r, ctypes.get_errno())")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "-1 1" {
		t.Fatalf("keyctl under audit: exit %d stdout %q stderr %q; want -1 EPERM(1)", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "seccomp denied keyctl ×1") || !strings.Contains(r.stderr, "python3") {
		t.Errorf("stderr does not name the denial: %q", r.stderr)
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Denials []struct {
			Syscall   string   `json:"syscall"`
			Count     int      `json:"count"`
			FirstArgv []string `json:"first_argv"`
		} `json:"seccomp_denials"`
	}
	json.Unmarshal(doc, &rep)
	found := false
	for _, d := range rep.Denials {
		if d.Syscall == "keyctl" && d.Count == 1 && len(d.FirstArgv) > 0 && d.FirstArgv[0] == "python3" {
			found = true
		}
	}
	if !found {
		t.Errorf("report lacks the keyctl denial: %s", doc)
	}
	errs, _ := schematest.Validate("../../docs/report.schema.json", doc)
	for _, e := range errs {
		t.Error(e)
	}
}

// TestCheck runs the host doctor for real: every item gets a verdict, the
// namespace probe really works here, the cgroup mode matches /proc/mounts,
// and the whole command is quick.
func TestCheck(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	r := e.run(t, nil, "check", "--json")
	took := time.Since(start)
	var doc struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Name, Verdict, Measured, Fix string
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("check --json: %v\n%s%s", err, r.stdout, r.stderr)
	}
	got := map[string]string{}
	for _, c := range doc.Checks {
		got[c.Name] = c.Verdict + ": " + c.Measured
		if c.Verdict != "ok" && c.Verdict != "warn" && c.Verdict != "fail" {
			t.Errorf("%s: verdict %q", c.Name, c.Verdict)
		}
		if c.Verdict != "ok" && c.Fix == "" {
			t.Errorf("%s is %s without a fix", c.Name, c.Verdict)
		}
	}
	for _, name := range []string{"kernel", "userns", "subuid", "cgroup", "overlayfs", "fuse", "network helpers", "seccomp"} {
		if _, ok := got[name]; !ok {
			t.Errorf("check has no %q item: %v", name, got)
		}
	}
	if !strings.HasPrefix(got["userns"], "ok") {
		t.Errorf("userns: %s (warden runs here, so the probe must pass)", got["userns"])
	}
	mounts, _ := os.ReadFile("/proc/mounts")
	wantMode := "v1"
	switch {
	case strings.Contains(string(mounts), " /sys/fs/cgroup cgroup2 "):
		wantMode = "unified"
	case strings.Contains(string(mounts), " /sys/fs/cgroup/unified cgroup2 "):
		wantMode = "hybrid"
	}
	if !strings.Contains(got["cgroup"], "cgroup mode "+wantMode) {
		t.Errorf("cgroup: %s, want mode %s from /proc/mounts", got["cgroup"], wantMode)
	}
	if took > 2*time.Second {
		t.Errorf("warden check took %v", took)
	}
	t.Logf("warden check took %v", took)
}

func TestStats(t *testing.T) {
	e := newEnv(t)
	r := e.run(t, nil, "run", "--stats", "--", "sh", "-c", "exit 4")
	if r.code != 4 || !strings.Contains(r.stderr, "warden: ended: exit 4; wall ") || !strings.Contains(r.stderr, "max RSS") {
		t.Errorf("--stats: exit %d stderr %q", r.code, r.stderr)
	}
}

// TestJobControl: Ctrl-Z on a command holding the terminal stops it and
// gives the caller's shell its prompt back; fg resumes it in the
// foreground, where Ctrl-C then ends it.
func TestJobControl(t *testing.T) {
	e := newEnv(t)
	tmux, waitFor := hostShell(t, e)
	// The marker is computed, so that the typed command line cannot match.
	tmux("send-keys", wardenBin(t)+" run -- sh -c 'echo ready-$((6*7)); sleep 1202; echo after-sleep'", "Enter")
	waitFor("ready-42")
	// Ctrl-Z only once sleep has been exec'd: dash starts it with vfork(2),
	// and a stop that lands between vfork and exec stops the child while
	// sh waits in the kernel for its exec, which never comes; no one's
	// direct child is stopped then, so neither a shell nor init can report
	// it (plain bash without warden hangs the same way).
	waitForeground(t, "sleep\x001202\x00")
	tmux("send-keys", "C-z")
	waitFor("Stopped")
	tmux("send-keys", "echo shell-is-back-$((40+2))", "Enter")
	waitFor("shell-is-back-42")
	tmux("send-keys", "fg", "Enter")
	// Ctrl-C must go to the command: wait until its process group owns
	// the terminal again (in /proc/PID/stat, tpgid == pgrp).
	waitForeground(t, "sleep\x001202\x00")
	tmux("send-keys", "C-c")
	tmux("send-keys", "echo exit=$?", "Enter")
	// The typed line shows "exit=" at once: wait for the status itself
	// (waitFor fails with the screen when it does not come).
	waitFor("exit=130")
}

// TestBackgroundThenFg: a command started in the background (`&`) does
// not hold the terminal, so reading it stops the command (SIGTTIN); `fg`
// must then give it the terminal, as a shell does for its own jobs.
func TestBackgroundThenFg(t *testing.T) {
	e := newEnv(t)
	tmux, waitFor := hostShell(t, e)
	script := "read x; echo got-$x-$((40+2))"
	tmux("send-keys", wardenBin(t)+" run -- sh -c '"+script+"' &", "Enter")
	// The read from the background stops the command (state T).
	payload := "sh\x00-c\x00" + script + "\x00"
	waitProc(t, payload, "stop on reading the terminal from the background", stopped)
	// warden stops with it (the shell then reports the job stopped):
	// fg resumes both and gives the command the terminal.
	waitProc(t, wardenBin(t)+"\x00run\x00--\x00"+payload, "stop with the command", stopped)
	tmux("send-keys", "fg", "Enter")
	waitForeground(t, payload)
	tmux("send-keys", "hi", "Enter")
	waitFor("got-hi-42")
}

// stopped reports whether the first of pids is stopped (state T).
func stopped(pids []string) bool {
	f := procStat(pids)
	return len(f) > 0 && f[0] == "T"
}

// procStat returns the fields of /proc/PID/stat after the command name
// for the first of pids (f[0] state, f[1] ppid, f[2] pgrp, f[3] session,
// f[4] tty_nr, f[5] tpgid), or nil.
func procStat(pids []string) []string {
	if len(pids) == 0 {
		return nil
	}
	b, err := os.ReadFile("/proc/" + pids[0] + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
}

// TestSignalDispositions: the payload starts with no signal ignored or
// blocked (warden's init catches some signals; that must not leak), so
// SIGPIPE still ends a writer and Ctrl-Z still stops a job.
func TestSignalDispositions(t *testing.T) {
	e := newEnv(t)
	r := e.run(t, nil, "run", "--", "grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status")
	if r.stdout != "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n" {
		t.Errorf("payload signal state:\n%s", r.stdout)
	}
}

// TestEarlySignal: a SIGTERM sent to warden at any moment of its start,
// before the payload exists, still ends the run: it must not be lost (the
// kernel drops a signal to a pid namespace's init that has no handler yet)
// nor leave a half-built jail. The delays sweep the whole start.
func TestEarlySignal(t *testing.T) {
	e := newEnv(t)
	for delay := time.Duration(0); delay <= 40*time.Millisecond; delay += 2 * time.Millisecond {
		cmd := exec.Command(wardenBin(t), "run", "--", "sleep", "30")
		cmd.Dir, cmd.Env = e.cwd, e.env
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGTERM)
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		var err error
		select {
		case err = <-waited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-waited
			t.Fatalf("SIGTERM %v after the start was lost: the run went on", delay)
		}
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("SIGTERM %v after the start: %v, want exit 143", delay, err)
		}
		ws := ee.Sys().(syscall.WaitStatus)
		// Before warden catches signals, SIGTERM ends warden itself (and
		// the jail with it); after, the payload gets it: 128+15.
		if !(ws.Signaled() && ws.Signal() == syscall.SIGTERM) && ee.ExitCode() != 143 {
			t.Errorf("SIGTERM %v after the start: %v, want exit 143; stderr %q", delay, err, errb.String())
		}
	}
}

// TestInitSurvivesSignals: the payload cannot crash, stop or kill the
// jail's init by signalling it. Init catches no signal, so the kernel
// discards every signal sent to it from inside its pid namespace, SIGKILL
// and SIGSTOP included (pid_namespaces(7)); a Go runtime as init would
// die with a goroutine dump on a fault signal sent by kill(2).
func TestInitSurvivesSignals(t *testing.T) {
	e := newEnv(t)
	var kills []string
	for _, sig := range []syscall.Signal{syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGILL, syscall.SIGTRAP, syscall.SIGABRT,
		syscall.SIGSTKFLT, syscall.SIGSYS, syscall.SIGFPE, syscall.SIGALRM, syscall.SIGPIPE, syscall.SIGXCPU, syscall.SIGVTALRM,
		syscall.SIGPROF, syscall.SIGPWR, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGCONT, syscall.SIGWINCH, syscall.SIGURG,
		syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTSTP,
		syscall.SIGSTOP, syscall.SIGKILL} {
		kills = append(kills, fmt.Sprintf("kill -%d 1 || echo refused %d", int(sig), int(sig)))
	}
	// After the signals, init must still reap: a child that exits is
	// waited for, and the run ends with the payload's own status.
	script := strings.Join(kills, "; ") + "; sleep 0.2; (exit 3) & wait; grep -E '^(State|SigCgt|Threads):' /proc/1/status; echo survived"
	r := e.run(t, nil, "run", "--", "sh", "-c", script)
	if r.code != 0 || !strings.HasSuffix(r.stdout, "survived\n") || r.stderr != "" || strings.Contains(r.stdout, "refused") {
		t.Errorf("signals to init from inside: exit %d stdout %q stderr %.300q; want init unharmed", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "State:\tS (sleeping)") || !strings.Contains(r.stdout, "SigCgt:\t0000000000000000") ||
		!strings.Contains(r.stdout, "Threads:\t1\n") {
		t.Errorf("init after the signals: %q; want sleeping, one thread, catching nothing", r.stdout)
	}
}

// TestTimeoutStoppedPayload: a payload that stopped itself still ends at
// the timeout, not after the kill grace: warden continues it after SIGTERM.
func TestTimeoutStoppedPayload(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	r := e.run(t, nil, "run", "--timeout", "1s", "--kill-grace", "20s", "--", "sh", "-c", "kill -STOP $$; echo never")
	if took := time.Since(start); r.code != 124 || strings.Contains(r.stdout, "never") || took > 10*time.Second {
		t.Errorf("stopped payload with --timeout 1s --kill-grace 20s: exit %d after %v, stdout %q; want 124 within seconds", r.code, took, r.stdout)
	}
}

// TestOwnHostnameResolves: the jail's host name resolves inside it (Java's
// InetAddress.getLocalHost and Python's getfqdn look it up), and the
// host's other /etc/hosts entries stay.
func TestOwnHostnameResolves(t *testing.T) {
	e := newEnv(t)
	r := e.run(t, nil, "run", "--hostname", "ci-job-7", "--", "sh", "-c",
		`getent hosts ci-job-7; getent hosts localhost | head -1; python3 -c 'import socket; print(socket.gethostbyname(socket.gethostname()))'`)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 || strings.Fields(lines[0])[0] != "127.0.1.1" || lines[2] != "127.0.1.1" || lines[1] == "" {
		t.Errorf("host name lookup in the jail: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestNoEscapeThroughTmpSockets: run from /tmp, the jail must not reach the
// sockets other programs keep there. The attack: drive the user's tmux
// server through its socket under /tmp to run a command outside the jail.
// The control, with /tmp asked for explicitly (--rw /tmp, warned about),
// shows the attack is real.
func TestNoEscapeThroughTmpSockets(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux not installed (scripts/setup.sh installs it)")
	}
	e := newEnv(t)
	dir, err := os.MkdirTemp("/tmp", "warden-tmux-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "default")
	if out, err := exec.Command("tmux", "-S", sock, "new-session", "-d", "sleep 60").CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("tmux", "-S", sock, "kill-server").Run() })
	marker := filepath.Join(e.home, "escaped")
	attack := []string{"tmux", "-S", sock, "new-window", "touch " + marker}
	for _, tc := range []struct {
		name    string
		flags   []string
		escapes bool
	}{
		{"run from /tmp", nil, false},
		{"control: --rw /tmp", []string{"--rw", "/tmp"}, true},
	} {
		os.Remove(marker)
		cmd := exec.Command(wardenBin(t), append(append([]string{"run"}, tc.flags...), append([]string{"--"}, attack...)...)...)
		cmd.Dir, cmd.Env = "/tmp", e.env
		out, _ := cmd.CombinedOutput()
		// tmux runs the window's command asynchronously: the escape is
		// waited for; its absence is known from tmux itself, which could
		// not reach the server from inside.
		escaped := false
		for deadline := time.Now().Add(10 * time.Second); tc.escapes && !escaped && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			_, err := os.Stat(marker)
			escaped = err == nil
		}
		if !tc.escapes {
			_, err := os.Stat(marker)
			escaped = err == nil || !strings.Contains(string(out), "error connecting to "+sock)
		}
		if escaped != tc.escapes {
			t.Errorf("%s: command ran outside the jail = %v, want %v; output %q", tc.name, escaped, tc.escapes, out)
		}
		if !strings.Contains(string(out), "warden: warning: ") {
			t.Errorf("%s: no warning about /tmp: %q", tc.name, out)
		}
	}
}

// TestReportPath: a relative --report is taken from the current
// directory (the README's own example), and a report that could not be
// written fails the run before the command starts, not after it ran.
func TestReportPath(t *testing.T) {
	e := newEnv(t)
	r := e.run(t, nil, "run", "--report", "run.json", "--", "true")
	if _, err := os.Stat(filepath.Join(e.cwd, "run.json")); r.code != 0 || err != nil {
		t.Errorf("--report run.json: exit %d stderr %q, report: %v", r.code, r.stderr, err)
	}
	r = e.run(t, nil, "run", "--report", "/nonexistent/r.json", "--", "echo", "ran")
	if r.code != 125 || r.stdout != "" || !strings.Contains(r.stderr, "--report /nonexistent/r.json: the directory /nonexistent does not exist") {
		t.Errorf("--report into a missing directory: exit %d stdout %q stderr %q; want 125 before the command runs", r.code, r.stdout, r.stderr)
	}
}

// TestDeletedCwd: a deleted current directory is warden's own error, in
// one line that says what to do.
func TestDeletedCwd(t *testing.T) {
	e := newEnv(t)
	cmd := exec.Command("sh", "-c", `mkdir gone && cd gone && rmdir ../gone && exec "$0" run -- true`, wardenBin(t))
	cmd.Dir, cmd.Env = e.cwd, e.env
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 125 || !strings.Contains(string(out), "current directory was deleted: cd to a directory that exists") {
		t.Errorf("warden in a deleted directory: %v %q, want exit 125 and what to do", err, out)
	}
}

// TestNestedRunExplains: warden inside a warden jail fails, and says why:
// the default seccomp profile refuses nested user namespaces (and the
// hint names the policy switch); without a filter, the kernel refuses a
// new /proc because the outer jail covers parts of its own.
func TestNestedRunExplains(t *testing.T) {
	e := newEnv(t)
	bin := wardenBin(t)
	for _, tc := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"default seccomp", nil, "nested_userns = true"},
		{"no seccomp", []string{"--seccomp", "none"}, "partly covered by mounts made outside it"},
	} {
		args := append(append([]string{"run", "--ro", filepath.Dir(bin)}, tc.flags...), "--", bin, "run", "--", "true")
		r := e.run(t, nil, args...)
		if r.code != 125 || !strings.Contains(r.stderr, "warden: hint: ") || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: nested run: exit %d, stderr %q; want 125 and a hint with %q", tc.name, r.code, r.stderr, tc.want)
		}
	}
}

// holdsTerminal reports whether the first of pids is in the foreground
// process group of its terminal.
func holdsTerminal(pids []string) bool {
	f := procStat(pids)
	return len(f) > 5 && f[2] == f[5] // pgrp == tpgid
}

// findExact returns the pids whose whole cmdline (NUL-separated) is cmdline.
func findExact(cmdline string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && string(b) == cmdline {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// tmuxSession runs cmd in a real terminal (a detached tmux session, gone
// when the test ends). tmux runs a tmux command on it; waitFor waits up to
// 10 s for text on the screen and returns the screen.
func tmuxSession(t *testing.T, dir, cmd string) (tmux func(args ...string) string, waitFor func(string) string) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux not installed (scripts/setup.sh installs it)")
	}
	sock := filepath.Join(t.TempDir(), "tmux.sock")
	tmux = func(args ...string) string {
		out, err := exec.Command("tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v %s", args, err, out)
		}
		return string(out)
	}
	tmux("new-session", "-d", "-x", "120", "-y", "30", "-c", dir, cmd)
	t.Cleanup(func() { exec.Command("tmux", "-S", sock, "kill-server").Run() })
	waitFor = func(want string) string {
		deadline := time.Now().Add(10 * time.Second)
		var screen string
		for time.Now().Before(deadline) {
			screen = tmux("capture-pane", "-p")
			if strings.Contains(screen, want) {
				return screen
			}
			time.Sleep(50 * time.Millisecond)
		}
		// The processes of this user, with their job-control state, say
		// where a job-control exchange stopped.
		ps, _ := exec.Command("ps", "-o", "pid,ppid,pgid,tpgid,stat,wchan:24,args", "-u", strconv.Itoa(os.Getuid())).CombinedOutput()
		t.Fatalf("timed out waiting for %q; screen:\n%s\nprocesses:\n%s", want, screen, ps)
		return ""
	}
	return tmux, waitFor
}

// waitProc waits up to 10 s until the process with exactly this cmdline
// satisfies cond, and fails the test (saying what did not happen) when it
// does not: a wait that ran out silently would let the next step act too
// early and fail for a misleading reason.
func waitProc(t *testing.T, cmdline, what string, cond func(pids []string) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond(findExact(cmdline)) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %q to %s", strings.ReplaceAll(cmdline, "\x00", " "), what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitForeground waits until the process with exactly this cmdline is in
// its terminal's foreground process group.
func waitForeground(t *testing.T, cmdline string) {
	t.Helper()
	waitProc(t, cmdline, "hold the terminal", holdsTerminal)
}

// hostShell starts an interactive bash (prompt "host$ ") in a terminal,
// as a user's shell with job control, and waits for its prompt.
func hostShell(t *testing.T, e *sandboxEnv) (tmux func(args ...string) string, waitFor func(string) string) {
	t.Helper()
	tmux, waitFor = tmuxSession(t, e.cwd,
		"env -i HOME="+e.home+" HISTFILE=/dev/null PATH=/usr/bin:/bin TERM=xterm PS1='host$ ' bash --norc --noprofile")
	waitFor("host$")
	return tmux, waitFor
}

// TestRlimitsBeforeSeccomp: the payload's rlimits are set before its
// seccomp filter is loaded, so a profile that denies prlimit64 and
// setrlimit to the command does not break the run or the limits.
func TestRlimitsBeforeSeccomp(t *testing.T) {
	e := newEnv(t)
	prof := filepath.Join(e.home, "no-rlimit.json")
	if err := os.WriteFile(prof, []byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
		{"names": ["prlimit64", "setrlimit"], "action": "SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.run(t, nil, "run", "--seccomp", prof, "--rlimit", "nofile=64:128", "--", "sh", "-c",
		"grep 'Max open files' /proc/self/limits; python3 -c 'import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (32, 64))' 2>&1 | tail -1")
	if r.code != 0 || !regexp.MustCompile(`Max open files\s+64\s+128`).MatchString(r.stdout) || !strings.Contains(r.stdout, "not allowed to raise maximum limit") {
		// Python says that for any EPERM; lowering a limit can only be
		// refused by the filter.
		t.Errorf("exit %d stdout %q stderr %q; want the limits 64/128 set and the command's own setrlimit denied", r.code, r.stdout, r.stderr)
	}
}

// TestSetupStepErrors: a step of the jail's setup that fails comes back as
// one line naming the mount, the call and the errno, exit 125; a symlink
// planted in a writable directory (here the project) never redirects a
// mount: the target is opened without following symlinks.
func TestSetupStepErrors(t *testing.T) {
	e := newEnv(t)
	r := e.run(t, nil, "run", "--tmpfs", "/usr/warden-no-such-dir", "--", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "warden: error: jail setup: mount /usr/warden-no-such-dir: tmpfs /usr/warden-no-such-dir [mode=0755,size=1g] (mkdirat): read-only file system") {
		t.Errorf("tmpfs under the read-only /usr: exit %d stderr %q", r.code, r.stderr)
	}
	if err := os.Symlink("/etc", filepath.Join(e.cwd, "evil")); err != nil {
		t.Fatal(err)
	}
	r = e.run(t, nil, "run", "--tmpfs", filepath.Join(e.cwd, "evil", "x"), "--", "sh", "-c", "echo RAN")
	if r.code != 125 || strings.Contains(r.stdout, "RAN") || !strings.Contains(r.stderr, "(openat2): too many levels of symbolic links") {
		t.Errorf("tmpfs through a symlink: exit %d stdout %q stderr %q; want refused (ELOOP)", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat("/etc/x"); err == nil {
		t.Error("/etc/x exists on the host")
	}
}

// TestTerminalResolvable: in a terminal, the command's terminal has a name
// inside the jail (/dev/console, as in bubblewrap): tty(1) and ttyname(3)
// work, where the host's /dev/pts/N is not part of the jail's own devpts.
func TestTerminalResolvable(t *testing.T) {
	e := newEnv(t)
	_, waitFor := tmuxSession(t, e.cwd, "env -i HOME="+e.home+" PATH=/usr/bin:/bin TERM=xterm "+wardenBin(t)+
		" run -- sh -c 'echo TTY=$(tty); python3 -c \"import os; print(\\\"NAME=\\\" + os.ttyname(0))\"; sleep 10'")
	screen := waitFor("NAME=")
	if !strings.Contains(screen, "TTY=/dev/console") || !strings.Contains(screen, "NAME=/dev/console") {
		t.Errorf("tty in the jail:\n%s", screen)
	}
}

// TestHomeReadOnlyFromHome: started in $HOME, the command cannot plant a
// line in ~/.bashrc, which would run outside the jail later; --rw ~ allows
// it on purpose (issue 15 item 4). A project under $HOME stays writable.
func TestHomeReadOnlyFromHome(t *testing.T) {
	e := newEnv(t)
	rc := filepath.Join(e.home, ".bashrc")
	if err := os.WriteFile(rc, []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inHome := *e
	inHome.cwd = e.home
	r := inHome.run(t, nil, "run", "--", "sh", "-c", "echo evil >> .bashrc")
	if b, _ := os.ReadFile(rc); string(b) != "# mine\n" || r.code == 0 || !strings.Contains(r.stderr, "is shown read-only") {
		t.Errorf("from $HOME: exit %d stderr %q, ~/.bashrc %q; want the write refused and a warning", r.code, r.stderr, b)
	}
	r = inHome.run(t, nil, "run", "--rw", e.home, "--", "sh", "-c", "echo ok >> .bashrc")
	if b, _ := os.ReadFile(rc); string(b) != "# mine\nok\n" || r.code != 0 || !strings.Contains(r.stderr, "$HOME is writable in the jail") {
		t.Errorf("from $HOME with --rw ~: exit %d stderr %q, ~/.bashrc %q; want the write and the warning", r.code, r.stderr, b)
	}
	r = e.run(t, nil, "run", "--", "sh", "-c", "echo x > made-here")
	if _, err := os.Stat(filepath.Join(e.cwd, "made-here")); r.code != 0 || err != nil {
		t.Errorf("a project under $HOME: exit %d %q, %v; want it writable", r.code, r.stderr, err)
	}
}

// TestTmpfsSizeCap: a write past the jail's tmpfs cap fails with ENOSPC
// and df shows the cap (issue 15 item 5).
func TestTmpfsSizeCap(t *testing.T) {
	e := newEnv(t)
	r := e.run(t, nil, "run", "--tmpfs-size", "1M", "--", "sh", "-c",
		"df -k /tmp | tail -1; dd if=/dev/zero of=/tmp/big bs=64k count=32 2>&1; true")
	if r.code != 0 || !regexp.MustCompile(`\s1024\s`).MatchString(r.stdout) || !strings.Contains(r.stdout, "No space left on device") {
		t.Errorf("exit %d stdout %q stderr %q; want a 1024 KiB /tmp and ENOSPC past it", r.code, r.stdout, r.stderr)
	}
}

// TestGitUnderDefault: from a subdirectory of a repository, git works under
// the default policy: the repository (the project) is writable, git finds
// it, commits carry the name from ~/.gitconfig (shown read-only), and
// ~/.git-credentials stays hidden (issue 15 item 2).
func TestGitUnderDefault(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed (scripts/setup.sh installs it)")
	}
	e := newEnv(t)
	for name, content := range map[string]string{
		".gitconfig":       "[user]\n\tname = Jail Tester\n\temail = jail@example.org\n",
		".git-credentials": "https://user:secret@example.org\n",
	} {
		if err := os.WriteFile(filepath.Join(e.home, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("git", "-C", e.cwd, "init", "-q").CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	sub := *e
	sub.cwd = filepath.Join(e.cwd, "sub")
	if err := os.Mkdir(sub.cwd, 0o755); err != nil {
		t.Fatal(err)
	}
	r := sub.run(t, nil, "run", "--", "sh", "-c",
		"pwd; echo hi > f && git add f && git commit -q -m one && git log --format=%an; cat ~/.git-credentials 2>&1 | head -1; echo x >> ~/.gitconfig 2>&1")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 3 || lines[0] != sub.cwd || lines[1] != "Jail Tester" || strings.Contains(r.stdout, "secret") {
		t.Errorf("git from a subdirectory: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(e.home, ".gitconfig")); strings.Contains(string(b), "x\n") {
		t.Error("~/.gitconfig was written from the jail")
	}
}
