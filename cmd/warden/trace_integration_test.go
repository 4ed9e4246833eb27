//go:build linux && integration

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/sandbox"
)

// traceOf returns the report's access record of the traced directory dir.
func traceOf(t *testing.T, rep sandbox.Report, dir string) sandbox.ReportAccesses {
	t.Helper()
	for _, a := range rep.Accesses {
		if a.Target == dir {
			return a
		}
	}
	t.Fatalf("no accesses for %s in the report: %+v", dir, rep.Accesses)
	return sandbox.ReportAccesses{}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTraceAccesses: a command that reads A, appends to W, writes B,
// deletes C and only stats S under --trace: the report lists exactly that,
// and the project on the host has the command's changes (a traced
// read-write directory is the real one, not a copy).
func TestTraceAccesses(t *testing.T) {
	e := newEnv(t)
	writeFiles(t, e.cwd, map[string]string{"A": "a\n", "C": "c\n", "S": "s\n", "W": "w\n", "untouched": "u\n", "sub/deep": "d\n"})
	r, rep := overlayReport(t, e, "--trace", ".", "--", "sh", "-c", "cat A >/dev/null; echo more >> W; echo b > B; rm C; test -e S")
	if r.code != 0 {
		t.Fatalf("run: %d\n%s", r.code, r.stderr)
	}
	a := traceOf(t, rep, e.cwd)
	got := map[string][]string{"read": a.Read, "written": a.Written, "created": a.Created, "deleted": a.Deleted, "stat_only": a.StatOnly}
	want := map[string]string{"read": "A", "written": "W", "created": "B", "deleted": "C", "stat_only": "S"}
	for k, w := range want {
		if g := strings.Join(got[k], " "); g != w {
			t.Errorf("%s = %q, want %q", k, g, w)
		}
	}
	if a.Source != e.cwd || a.ReadOnly {
		t.Errorf("source %q read_only %v", a.Source, a.ReadOnly)
	}
	if b, err := os.ReadFile(filepath.Join(e.cwd, "B")); err != nil || string(b) != "b\n" {
		t.Errorf("B on the host: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(e.cwd, "C")); !os.IsNotExist(err) {
		t.Errorf("C still on the host: %v", err)
	}
	var found bool
	for _, p := range rep.Protections {
		if p.Name == "mounts" && strings.Contains(p.Detail, "traced (accesses recorded): "+e.cwd) {
			found = true
		}
	}
	if !found {
		t.Errorf("the mounts protection does not name the traced directory: %+v", rep.Protections)
	}
}

// TestTraceReadOnly: a directory the view shows read-only stays read-only
// when traced: writes fail with EROFS, and reads are recorded.
func TestTraceReadOnly(t *testing.T) {
	e := newEnv(t)
	data := filepath.Join(e.home, "data")
	writeFiles(t, data, map[string]string{"in": "input\n"})
	r, rep := overlayReport(t, e, "--ro", data, "--trace", data, "--", "sh", "-c", "cat "+data+"/in; echo x > "+data+"/out")
	if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") || r.stdout != "input\n" {
		t.Fatalf("write to a read-only traced directory: %d %q\n%s", r.code, r.stdout, r.stderr)
	}
	a := traceOf(t, rep, data)
	if !a.ReadOnly || strings.Join(a.Read, " ") != "in" || len(a.Created)+len(a.Written) != 0 {
		t.Errorf("accesses: %+v", a)
	}
	if _, err := os.Stat(filepath.Join(data, "out")); !os.IsNotExist(err) {
		t.Errorf("out on the host: %v", err)
	}
}

// TestTraceBelowBind: a directory below a bind is traced on its own; what
// is mounted inside it (a hidden credential directory) stays hidden.
func TestTraceBelowBind(t *testing.T) {
	e := newEnv(t)
	writeFiles(t, e.cwd, map[string]string{"src/main.c": "int main(){}\n", "other": "o\n"})
	r, rep := overlayReport(t, e, "--trace", "src", "--", "sh", "-c", "cat src/main.c other >/dev/null")
	if r.code != 0 {
		t.Fatalf("run: %d\n%s", r.code, r.stderr)
	}
	a := traceOf(t, rep, filepath.Join(e.cwd, "src"))
	if strings.Join(a.Read, " ") != "main.c" {
		t.Errorf("read = %v", a.Read)
	}
}

// TestTraceRefusals: what the jail does not show from the host cannot be
// traced, and says so before anything runs.
func TestTraceRefusals(t *testing.T) {
	e := newEnv(t)
	writeFiles(t, e.cwd, map[string]string{"file": "f\n"})
	for _, c := range []struct{ arg, want string }{
		{filepath.Join(e.home, ".ssh"), "not shown from the host"},
		{e.cwd + "/.git", "no such directory"},
		{"/", "the jail's root"},
		{"/proc", "not shown from the host"},
		{"file", "not a directory"},
	} {
		r := e.run(t, nil, "run", "--trace", c.arg, "--", "true")
		if r.code != 125 || !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("--trace %s: %d, want 125 and one line with %q:\n%s", c.arg, r.code, c.want, r.stderr)
		}
	}
}

// TestTraceNoEscape: through a traced directory the jail reaches nothing
// of the host's that it could not reach without tracing: a symlink to a
// hidden credential is resolved in the jail's view, and a rename out of
// the traced tree fails (another mount) and leaves the file in place.
func TestTraceNoEscape(t *testing.T) {
	e := newEnv(t)
	writeFiles(t, e.cwd, map[string]string{"A": "a\n"})
	if err := os.Symlink(filepath.Join(e.home, ".ssh", "id_rsa"), filepath.Join(e.cwd, "key")); err != nil {
		t.Fatal(err)
	}
	r := e.run(t, nil, "run", "--trace", ".", "--", "sh", "-c",
		"cat key; python3 -c 'import os\ntry: os.rename(\"A\", \"../A2\")\nexcept OSError as e: print(e.strerror)'")
	if strings.Contains(r.stdout, "PRIVATE KEY") {
		t.Fatalf("the symlink reached the hidden key:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "Invalid cross-device link") {
		t.Errorf("rename out of the traced directory: %q\n%s", r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(e.cwd, "A")); err != nil {
		t.Errorf("A left the traced directory on the host: %v\n%s", err, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(e.home, "A2")); !os.IsNotExist(err) {
		t.Errorf("A2 appeared beside the project on the host: %v", err)
	}
}

// TestTraceKilledWarden: warden killed with SIGKILL while the jail uses a
// traced directory: the jail's processes die, and no FUSE mount or
// process is left.
func TestTraceKilledWarden(t *testing.T) {
	e := newEnv(t)
	marker := fmt.Sprintf("%d.%d", 1000+os.Getpid()%1000, time.Now().UnixNano()%1000000)
	cmd := exec.Command(wardenBin(t), "run", "--trace", ".", "--", "sh", "-c", "ls >/dev/null; exec sleep "+marker)
	cmd.Dir, cmd.Env = e.cwd, e.env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !processNamed(marker) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the jail's command never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	for processNamed(marker) {
		if time.Now().After(deadline) {
			t.Fatal("the jail's command outlived warden's SIGKILL")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), e.cwd) {
		t.Errorf("a mount of the traced directory is left:\n%s", mi)
	}
}

// processNamed reports whether a process "sleep ARG" runs.
func processNamed(arg string) bool {
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err == nil && string(b) == "sleep\x00"+arg+"\x00" {
			return true
		}
	}
	return false
}

// TestTraceDescriptorLimit: the jail's init moves /dev/fuse to a fixed
// descriptor number; under a lower limit of open files warden refuses
// before anything runs, and says what to raise.
func TestTraceDescriptorLimit(t *testing.T) {
	e := newEnv(t)
	cmd := exec.Command("sh", "-c", `ulimit -n 512 && exec "$0" run --trace . -- true`, wardenBin(t))
	cmd.Dir, cmd.Env = e.cwd, e.env
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 125 || !strings.Contains(string(out), "needs descriptor number 900") || !strings.Contains(string(out), "ulimit -n 1024") {
		t.Errorf("--trace under ulimit -n 512: %v\n%s", err, out)
	}
}

// TestTracePersistentJail: a jail started with -d serves its traced
// directory from its supervisor; `warden exec` works in the traced view,
// and the report written when the jail stops has what the exec'd command
// did.
func TestTracePersistentJail(t *testing.T) {
	e, _ := jailEnv(t)
	writeFiles(t, e.cwd, map[string]string{"A": "a\n"})
	rp := filepath.Join(t.TempDir(), "report.json")
	if r := e.run(t, nil, "run", "-d", "--name", "traced", "--trace", ".", "--report", rp, "--", "sleep", "60"); r.code != 0 {
		t.Fatalf("run -d: %d\n%s", r.code, r.stderr)
	}
	if r := e.run(t, nil, "exec", "traced", "--", "sh", "-c", "cat A && echo b > B"); r.code != 0 || r.stdout != "a\n" {
		t.Fatalf("exec in the traced view: %d %q\n%s", r.code, r.stdout, r.stderr)
	}
	if r := e.run(t, nil, "stop", "--timeout", "1s", "traced"); r.code != 0 {
		t.Fatalf("stop: %d\n%s", r.code, r.stderr)
	}
	var rep sandbox.Report
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile(rp)
		if err == nil && json.Unmarshal(b, &rep) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report from the stopped jail: %v", err)
		}
	}
	a := traceOf(t, rep, e.cwd)
	if strings.Join(a.Read, " ") != "A" || strings.Join(a.Created, " ") != "B" {
		t.Errorf("accesses: read %v created %v", a.Read, a.Created)
	}
}
