//go:build integration && linux

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/sandbox/jails"
)

type lsEntry struct {
	Name          string   `json:"name"`
	State         string   `json:"state"`
	Pid           int      `json:"pid"`
	SupervisorPid int      `json:"supervisor_pid"`
	Created       string   `json:"created"`
	Command       []string `json:"command"`
	Policy        string   `json:"policy"`
	Exit          string   `json:"exit"`
}

// jailEnv is newEnv with a runtime directory of its own, where the jails'
// state lives.
func jailEnv(t *testing.T) (*sandboxEnv, string) {
	e := newEnv(t)
	rt := t.TempDir()
	os.Chmod(rt, 0o700)
	e.env = append(e.env, "XDG_RUNTIME_DIR="+rt)
	t.Cleanup(func() {
		// Whatever a failed test left running.
		ls := listJails(t, e)
		for _, j := range ls {
			e.run(t, nil, "stop", "--timeout", "1s", j.Name)
		}
	})
	return e, filepath.Join(rt, "warden", "jails")
}

func listJails(t *testing.T, e *sandboxEnv) []lsEntry {
	t.Helper()
	r := e.run(t, nil, "ls", "--json")
	var out []lsEntry
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil {
		t.Fatalf("warden ls --json: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	return out
}

func processGone(pid int) bool {
	_, err := os.Stat("/proc/" + itoa(pid))
	return os.IsNotExist(err)
}

func itoa(n int) string { return strconv.Itoa(n) }

func waitGoneT(t *testing.T, pid int, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if processGone(pid) {
			return
		}
	}
	t.Errorf("%s (pid %d) is still there", what, pid)
}

// TestPersistentJail: run -d returns once the command runs and prints the
// name; ls --json shows the jail; logs shows the command's output; stop
// leaves no process and no state (FreeBSD's jail -c persist, jls, jail -r).
func TestPersistentJail(t *testing.T) {
	e, root := jailEnv(t)
	r := e.run(t, nil, "run", "-d", "--name", "svc", "--", "sh", "-c", "echo started; exec sleep 60")
	if r.code != 0 || r.stdout != "svc\n" {
		t.Fatalf("run -d: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	ls := listJails(t, e)
	if len(ls) != 1 || ls[0].Name != "svc" || ls[0].State != "running" || ls[0].Pid <= 0 || ls[0].SupervisorPid <= 0 ||
		ls[0].Policy != "default" || strings.Join(ls[0].Command, " ") != "sh -c echo started; exec sleep 60" {
		t.Fatalf("ls --json: %+v", ls)
	}
	if _, err := time.Parse(time.RFC3339, ls[0].Created); err != nil {
		t.Errorf("created %q: %v", ls[0].Created, err)
	}
	var logs result
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if logs = e.run(t, nil, "logs", "svc"); strings.Contains(logs.stdout, "started") {
			break
		}
	}
	if logs.code != 0 || logs.stdout != "started\n" {
		t.Errorf("logs: exit %d stdout %q stderr %q", logs.code, logs.stdout, logs.stderr)
	}
	// A second jail of the same name is refused while the first runs.
	if r := e.run(t, nil, "run", "-d", "--name", "svc", "--", "true"); r.code != 125 || !strings.Contains(r.stderr, "jail svc is running") {
		t.Errorf("a taken name: exit %d stderr %q", r.code, r.stderr)
	}
	start := time.Now()
	if r := e.run(t, nil, "stop", "svc"); r.code != 0 || r.stdout != "svc\n" {
		t.Errorf("stop: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stop took %v: sleep should have died of the SIGTERM", took)
	}
	waitGoneT(t, ls[0].Pid, "the jail's init")
	waitGoneT(t, ls[0].SupervisorPid, "the supervisor")
	if ls := listJails(t, e); len(ls) != 0 {
		t.Errorf("ls after stop: %+v", ls)
	}
	if _, err := os.Stat(filepath.Join(root, "svc")); !os.IsNotExist(err) {
		t.Errorf("the jail's state is still there: %v", err)
	}
}

// TestPersistentJailEnds: a jail whose command ends is listed as stopped,
// with its exit, until stop removes it; a jail whose supervisor is killed
// dies with it, and ls forgets it.
func TestPersistentJailEnds(t *testing.T) {
	e, root := jailEnv(t)
	if r := e.run(t, nil, "run", "-d", "--name", "short", "--", "sh", "-c", "exit 3"); r.code != 0 {
		t.Fatalf("run -d: exit %d %q", r.code, r.stderr)
	}
	var ls []lsEntry
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ls = listJails(t, e); len(ls) == 1 && ls[0].State == "stopped" {
			break
		}
	}
	if len(ls) != 1 || ls[0].State != "stopped" || ls[0].Exit != "exit 3" {
		t.Errorf("ls after the command ended: %+v", ls)
	}
	if r := e.run(t, nil, "stop", "short"); r.code != 0 {
		t.Errorf("stop of a stopped jail: exit %d %q", r.code, r.stderr)
	}

	if r := e.run(t, nil, "run", "-d", "--name", "orphan", "--", "sleep", "60"); r.code != 0 {
		t.Fatalf("run -d: exit %d %q", r.code, r.stderr)
	}
	ls = listJails(t, e)
	if len(ls) != 1 {
		t.Fatalf("ls: %+v", ls)
	}
	st, err := jails.Read(filepath.Join(root, "orphan"))
	if err != nil {
		t.Fatal(err)
	}
	if err := jails.Kill(st.SupervisorPid, st.SupervisorStart, 9); err != nil {
		t.Fatal(err)
	}
	waitGoneT(t, st.Pid, "the jail's init after its supervisor was killed")
	if ls := listJails(t, e); len(ls) != 0 {
		t.Errorf("ls after the supervisor was killed: %+v", ls)
	}
	if _, err := os.Stat(filepath.Join(root, "orphan")); !os.IsNotExist(err) {
		t.Errorf("the stale jail's state is still there: %v", err)
	}
}

// TestPersistentJailBadInput: each mistake gets one line and exit 125 (127
// for a command that does not exist, as for run), and leaves no state.
func TestPersistentJailBadInput(t *testing.T) {
	e, root := jailEnv(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"stop", "nosuch"}, 125, "no jail nosuch"},
		{[]string{"logs", "nosuch"}, 125, "no jail nosuch"},
		{[]string{"run", "--name", "x", "--", "true"}, 125, "--name names a jail started with -d"},
		{[]string{"run", "-d", "--name", "../x", "--", "true"}, 125, "is not a jail name"},
		{[]string{"run", "-d", "--name", "gone", "--", "/nonexistent"}, 127, `exec "/nonexistent"`},
	} {
		r := e.run(t, nil, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "warden: error:") != 1 {
			t.Errorf("%v: exit %d stderr %q; want %d with %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("state left behind: %v", ents)
	}
}

// TestPersistentJailExec: warden exec runs a command in a running jail
// (FreeBSD's jexec): the same pid namespace (ps shows the jail's command),
// host name, files and filter, as the jail's user with no capabilities,
// and exec returns the command's exit status. 50 execs in a row leave no
// process behind, in the jail or on the host.
func TestPersistentJailExec(t *testing.T) {
	e, _ := jailEnv(t)
	if r := e.run(t, nil, "run", "-d", "--name", "box", "--hostname", "h1", "--", "sh", "-c", "echo hi > /tmp/m; exec sleep 60"); r.code != 0 {
		t.Fatalf("run -d: exit %d %q", r.code, r.stderr)
	}
	var r result
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if r = e.run(t, nil, "exec", "box", "--", "cat", "/tmp/m"); r.stdout == "hi\n" {
			break
		}
	}
	r = e.run(t, nil, "exec", "--env", "X=1", "box", "--", "sh", "-c",
		"ps -e -o comm=; hostname; cat /tmp/m; echo X=$X; grep -E '^(Seccomp|CapEff):' /proc/self/status; exit 7")
	out := r.stdout
	for _, want := range []string{"warden-init\n", "sleep\n", "h1\n", "hi\n", "X=1\n", "Seccomp:\t2\n", "CapEff:\t0000000000000000\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("exec lacks %q: exit %d stdout %q stderr %q", want, r.code, out, r.stderr)
		}
	}
	if r.code != 7 {
		t.Errorf("exec exit %d, want the command's 7", r.code)
	}
	for i := 0; i < 50; i++ {
		if r := e.run(t, nil, "exec", "box", "--", "true"); r.code != 0 {
			t.Fatalf("exec %d: exit %d %q", i, r.code, r.stderr)
		}
	}
	r = e.run(t, nil, "exec", "box", "--", "ps", "-e", "-o", "comm=")
	if got := strings.Fields(r.stdout); len(got) != 3 || got[0] != "warden-init" || got[1] != "sleep" || got[2] != "ps" {
		t.Errorf("the jail's processes after 50 execs: %q", got)
	}
	e.run(t, nil, "stop", "box")
	if r := e.run(t, nil, "exec", "box", "--", "true"); r.code != 125 || !strings.Contains(r.stderr, "no jail box") {
		t.Errorf("exec into a stopped jail: exit %d %q", r.code, r.stderr)
	}
}

// TestPersistentJailPause: a jail without a cgroup of its own cannot be
// frozen: pause says so (exit 125) unless --limits best-effort, which stops
// its processes with SIGSTOP, says so, and ls shows it paused; exec waits
// for resume; resume continues it; stop works on a paused jail. (The VM lane
// freezes a jail's cgroup for real: testdata/vm/cases.sh, case pause.)
func TestPersistentJailPause(t *testing.T) {
	e, _ := jailEnv(t)
	tick := filepath.Join(e.cwd, "tick")
	if r := e.run(t, nil, "run", "-d", "--name", "pz", "--", "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > tick; sleep 0.05; done"); r.code != 0 {
		t.Fatalf("run -d: exit %d %q", r.code, r.stderr)
	}
	read := func() string { b, _ := os.ReadFile(tick); return string(b) }
	for deadline := time.Now().Add(10 * time.Second); read() == "" && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if r := e.run(t, nil, "pause", "pz"); r.code != 125 || !strings.Contains(r.stderr, "no cgroup of its own") || !strings.Contains(r.stderr, "--limits best-effort") {
		t.Errorf("pause without a cgroup: exit %d %q", r.code, r.stderr)
	}
	if r := e.run(t, nil, "pause", "--limits", "best-effort", "pz"); r.code != 0 || !strings.Contains(r.stderr, "SIGSTOP") {
		t.Fatalf("pause --limits best-effort: exit %d %q", r.code, r.stderr)
	}
	if ls := listJails(t, e); len(ls) != 1 || ls[0].State != "paused" {
		t.Errorf("ls: %+v", ls)
	}
	a := read()
	time.Sleep(300 * time.Millisecond)
	if b := read(); a != b {
		t.Errorf("the command ran while paused: %q then %q", a, b)
	}
	if r := e.run(t, nil, "exec", "pz", "--", "true"); r.code != 125 || !strings.Contains(r.stderr, "warden resume pz") {
		t.Errorf("exec into a paused jail: exit %d %q", r.code, r.stderr)
	}
	if r := e.run(t, nil, "resume", "pz"); r.code != 0 {
		t.Fatalf("resume: exit %d %q", r.code, r.stderr)
	}
	b := read()
	for deadline := time.Now().Add(10 * time.Second); read() == b && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if read() == b {
		t.Error("the command does not run after resume")
	}
	e.run(t, nil, "pause", "--limits", "best-effort", "pz")
	if r := e.run(t, nil, "stop", "--timeout", "2s", "pz"); r.code != 0 {
		t.Errorf("stop of a paused jail: exit %d %q", r.code, r.stderr)
	}
	if ls := listJails(t, e); len(ls) != 0 {
		t.Errorf("ls after stop: %+v", ls)
	}
}

// TestPersistentJailTwoStops: two stops of one jail at the same time: one
// stops it, the other says in one line that a stop is under way (or, if it
// came second, that there is no such jail); the state ends consistent.
func TestPersistentJailTwoStops(t *testing.T) {
	e, root := jailEnv(t)
	// A command that ignores SIGTERM, so the first stop takes its timeout.
	if r := e.run(t, nil, "run", "-d", "--name", "two", "--", "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"); r.code != 0 {
		t.Fatalf("run -d: exit %d %q", r.code, r.stderr)
	}
	results := make(chan result, 2)
	for i := 0; i < 2; i++ {
		go func() { results <- e.run(t, nil, "stop", "--timeout", "1s", "two") }()
		time.Sleep(200 * time.Millisecond)
	}
	a, b := <-results, <-results
	ok, refused := 0, 0
	for _, r := range []result{a, b} {
		switch {
		case r.code == 0:
			ok++
		case r.code == 125 && (strings.Contains(r.stderr, "being stopped by another") || strings.Contains(r.stderr, "no jail two")) &&
			strings.Count(r.stderr, "\n") == 1:
			refused++
		}
	}
	if ok != 1 || refused != 1 {
		t.Errorf("two stops: %+v and %+v; want one to stop it and one refused in one line", a, b)
	}
	if ls := listJails(t, e); len(ls) != 0 {
		t.Errorf("ls after the stops: %+v", ls)
	}
	if _, err := os.Stat(filepath.Join(root, "two")); !os.IsNotExist(err) {
		t.Errorf("state left: %v", err)
	}
}
