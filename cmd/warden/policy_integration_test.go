//go:build linux && integration

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/sandbox/cgroup"
	"github.com/warden-sandbox/warden/sandbox/schematest"
)

// These tests run each built-in policy, and user policy files, through the
// real binary as the unprivileged test user, and check what the policy
// means rather than how it is spelt.

// projectEnv is newEnv with the current directory one level below the top
// of a git repository: ${PROJECT} is $HOME/proj, ${CWD} is $HOME/proj/sub.
func projectEnv(t *testing.T) (*sandboxEnv, string) {
	e := newEnv(t)
	project := e.cwd
	e.cwd = filepath.Join(project, "sub")
	for _, d := range []string{filepath.Join(project, ".git"), e.cwd} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(e.cwd, "input.txt"), []byte("input\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return e, project
}

func TestBuiltinDefault(t *testing.T) {
	e, _ := projectEnv(t)
	for _, args := range [][]string{{"run", "--policy", "default"}, {"run"}} {
		r := e.run(t, nil, append(args, "--", "sh", "-c",
			`id -u; hostname; cat input.txt; echo out > written && echo wrote; cat "$HOME/.ssh/id_rsa" 2>&1; echo "[$AWS_SECRET_ACCESS_KEY]"`)...)
		want := fmt.Sprintf("%d\nwarden\ninput\nwrote\n", os.Getuid())
		if r.code != 0 || !strings.HasPrefix(r.stdout, want) {
			t.Errorf("%v: exit %d\n%s%s\nwant the output to start with\n%s", args, r.code, r.stdout, r.stderr, want)
		}
		if strings.Contains(r.stdout, "PRIVATE KEY") || strings.Contains(r.stdout, "hunter2") {
			t.Errorf("%v: a secret reached the payload:\n%s", args, r.stdout)
		}
		if b, err := os.ReadFile(filepath.Join(e.cwd, "written")); err != nil || string(b) != "out\n" {
			t.Errorf("%v: the current directory is not writable through to the host: %q %v", args, b, err)
		}
		os.Remove(filepath.Join(e.cwd, "written"))
	}
}

func TestBuiltinStrict(t *testing.T) {
	e, _ := projectEnv(t)
	r := e.run(t, nil, "run", "--policy", "strict", "--", "sh", "-c",
		`cat input.txt; touch here 2>&1 || echo cwd-ro; touch /tmp/x && echo tmp-rw; touch "$HOME/x" 2>&1 && echo home-rw`)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"input\n", "Read-only file system\n", "cwd-ro\n", "tmp-rw\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("strict: output lacks %q:\n%s", want, r.stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(e.cwd, "here")); err == nil {
		t.Error("strict: a file was created in the current directory on the host")
	}
	// The strict seccomp profile refuses socket families beyond unix,
	// inet, inet6 and netlink in the filter (EPERM); default leaves AF_ALG
	// to the kernel, which creates it or answers EAFNOSUPPORT.
	alg := `use Socket; socket(my $s, 38, 5, 0) or die "socket: $!\n"; print "ok\n"`
	r = e.run(t, nil, "run", "--policy", "strict", "--", "perl", "-e", alg)
	if r.code == 0 || !strings.Contains(r.stderr, "Operation not permitted") {
		t.Errorf("strict: socket(AF_ALG) = exit %d %q %q, want EPERM from the filter", r.code, r.stdout, r.stderr)
	}
	r = e.run(t, nil, "run", "--policy", "default", "--", "perl", "-e", alg)
	if strings.Contains(r.stderr, "Operation not permitted") {
		t.Errorf("default: socket(AF_ALG) was refused by the filter (%q); the strict test above proves nothing", r.stderr)
	}
}

func TestBuiltinBuild(t *testing.T) {
	e, project := projectEnv(t)
	e.env = append(e.env, "SOURCE_DATE_EPOCH=1700000000")
	r := e.run(t, nil, "run", "--policy", "build", "--", "sh", "-c",
		`echo top > ../top.o && echo project-rw; echo $SOURCE_DATE_EPOCH; ls -A "$HOME"; cat "$HOME/.ssh/id_rsa" 2>&1; ls /sys/class/net`)
	if r.code != 0 {
		t.Fatalf("exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 4 || lines[0] != "project-rw" || lines[1] != "1700000000" || lines[2] != "proj" {
		t.Errorf("build: output\n%s\nwant project-rw, SOURCE_DATE_EPOCH, and only the project in $HOME", r.stdout)
	}
	if strings.Contains(r.stdout, "PRIVATE KEY") {
		t.Error("build: $HOME/.ssh is readable")
	}
	if ifaces := lines[len(lines)-1]; ifaces != "lo" {
		t.Errorf("build: network interfaces %q, want only lo", ifaces)
	}
	if b, err := os.ReadFile(filepath.Join(project, "top.o")); err != nil || string(b) != "top\n" {
		t.Errorf("build: the project's top level is not writable through to the host: %q %v", b, err)
	}

	// A project outside $HOME: $HOME is not there at all.
	outside := t.TempDir()
	os.Mkdir(filepath.Join(outside, ".git"), 0o755)
	e2 := *e
	e2.cwd = outside
	r = e2.run(t, nil, "run", "--policy", "build", "--", "sh", "-c", `ls -A "$HOME" 2>&1; echo x > made && echo rw`)
	if r.code != 0 || strings.Contains(r.stdout, ".ssh") || !strings.HasSuffix(r.stdout, "rw\n") {
		t.Errorf("build outside $HOME: exit %d %q %q; want $HOME absent or empty, project writable", r.code, r.stdout, r.stderr)
	}
}

type reportDoc struct {
	Protections []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"protections"`
	Ending struct {
		Kind       string `json:"kind"`
		ExitStatus int    `json:"exit_status"`
	} `json:"ending"`
}

func readReport(t *testing.T, path string) reportDoc {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no report: %v", err)
	}
	errs, err := schematest.Validate("../../docs/report.schema.json", doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("report %s: %v", path, e)
	}
	var rep reportDoc
	if err := json.Unmarshal(doc, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func (r reportDoc) state(name string) string {
	for _, p := range r.Protections {
		if p.Name == name {
			return p.State
		}
	}
	return "(absent)"
}

// TestBuiltinCI: ci requires its limits. Where this host cannot enforce
// memory and pids limits (no delegated cgroup v2 controllers, as on the
// development VM) the run is refused with the fix; with --limits
// best-effort it runs and its report, at ${PROJECT}/warden-report.json,
// records the limits as degraded. In the VM lane, where they can be
// enforced, the run succeeds and the report says so.
func TestBuiltinCI(t *testing.T) {
	e, project := projectEnv(t)
	probe := cgroup.Probe()
	refused := probe.Missing["memory"] != "" || probe.Missing["pids"] != ""
	report := filepath.Join(project, "warden-report.json")

	r := e.run(t, nil, "run", "--policy", "ci", "--", "sh", "-c", "echo ran > ran.txt")
	rep := readReport(t, report)
	if refused {
		t.Logf("this host cannot enforce ci's limits: memory: %s; pids: %s", probe.Missing["memory"], probe.Missing["pids"])
		if r.code != exitWarden || !strings.Contains(r.stderr, "warden: hint:") || !strings.Contains(r.stderr, "--limits=best-effort") {
			t.Errorf("ci: exit %d %q; want 125 with hints naming --limits=best-effort", r.code, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(e.cwd, "ran.txt")); err == nil {
			t.Error("ci: the command ran although the limits were refused")
		}
		if rep.Ending.Kind != "setup-error" || rep.Ending.ExitStatus != exitWarden {
			t.Errorf("ci refusal report: ending %+v, want setup-error/125", rep.Ending)
		}
	} else if r.code != 0 || rep.state("limit.memory") != "enforced" || rep.state("limit.pids") != "enforced" {
		t.Errorf("ci on a host with delegated controllers: exit %d %q, memory %s, pids %s; want 0, enforced",
			r.code, r.stderr, rep.state("limit.memory"), rep.state("limit.pids"))
	}
	os.Remove(report)

	r = e.run(t, nil, "run", "--policy", "ci", "--limits", "best-effort", "--", "sh", "-c", "echo ran > ran.txt; echo $CI")
	if r.code != 0 {
		t.Fatalf("ci --limits best-effort: exit %d: %s", r.code, r.stderr)
	}
	rep = readReport(t, report)
	want := "enforced"
	if refused {
		want = "degraded"
		// One warning per cause, naming each limit it leaves out.
		if !regexp.MustCompile(`(?m)^warden: warning: limits? ([\w-]+, )*memory(, [\w-]+)* not enforced`).MatchString(r.stderr) {
			t.Errorf("best-effort without the limits must warn; stderr %q", r.stderr)
		}
	}
	if rep.Ending.Kind != "exit" || rep.state("limit.memory") != want || rep.state("limit.pids") != want {
		t.Errorf("ci best-effort report: ending %+v, memory %s, pids %s; want exit, %s", rep.Ending,
			rep.state("limit.memory"), rep.state("limit.pids"), want)
	}
	if b, _ := os.ReadFile(filepath.Join(e.cwd, "ran.txt")); string(b) != "ran\n" {
		t.Error("ci best-effort: the project is not writable")
	}
}

// TestBuiltinNet: net is default plus outbound network through pasta or
// slirp4netns. Where neither helper can run, it must refuse clearly.
func TestBuiltinNet(t *testing.T) {
	e, _ := projectEnv(t)
	port, _ := hostServer(t)
	_, pastaErr := exec.LookPath("pasta")
	_, slirpErr := exec.LookPath("slirp4netns")
	_, tunErr := os.Stat("/dev/net/tun")
	canRun := (pastaErr == nil || slirpErr == nil) && tunErr == nil
	r := e.run(t, nil, "run", "--policy", "net", "--", "bash", "-c",
		fmt.Sprintf(`ls /sys/class/net | tr '\n' ' '; echo; grep -c '^nameserver' /etc/resolv.conf; (exec 3<>/dev/tcp/127.0.0.1/%d && cat <&3) 2>/dev/null; true`, port))
	if !canRun {
		if r.code != exitWarden || !(strings.Contains(r.stderr, "pasta") || strings.Contains(r.stderr, "slirp4netns") || strings.Contains(r.stderr, "tun")) {
			t.Errorf("net without a helper: exit %d %q; want 125 naming the missing helper", r.code, r.stderr)
		}
		return
	}
	if r.code != 0 {
		t.Fatalf("net: exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(r.stdout, "\n")
	ifaces := strings.Fields(lines[0])
	if !slices.Contains(ifaces, "lo") || len(ifaces) < 2 {
		t.Errorf("net: interfaces %v, want lo and the helper's interface", ifaces)
	}
	if len(lines) < 2 || lines[1] == "0" {
		t.Errorf("net: resolv.conf has no nameserver:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "HOST-LOOPBACK") {
		t.Error("net: the host's loopback is reachable from the jail")
	}
}

// TestUserPolicies: a policy found by name in $XDG_CONFIG_HOME, extends
// by name and by relative path, and the policy subcommands on them.
func TestUserPolicies(t *testing.T) {
	e, _ := projectEnv(t)
	cfg := t.TempDir()
	dir := filepath.Join(cfg, "warden", "policies")
	os.MkdirAll(dir, 0o755)
	e.env = append(e.env, "XDG_CONFIG_HOME="+cfg)
	writeFile(t, filepath.Join(dir, "team.toml"), `extends = "strict"
description = "team: strict with a scratch area"

[filesystem]
tmpfs = ["/scratch"]

[process]
hostname = "team"
env = { TEAM = "yes" }
`)
	r := e.run(t, nil, "run", "--policy", "team", "--", "sh", "-c",
		`hostname; echo $TEAM; touch here 2>/dev/null || echo cwd-ro; touch /scratch/y && echo scratch-rw`)
	if want := "team\nyes\ncwd-ro\nscratch-rw\n"; r.code != 0 || r.stdout != want {
		t.Errorf("--policy team: exit %d %q %q, want %q", r.code, r.stdout, r.stderr, want)
	}

	// extends by a path relative to the extending file.
	local := filepath.Join(e.cwd, "policies")
	os.MkdirAll(local, 0o755)
	writeFile(t, filepath.Join(local, "base.toml"), "extends = \"team\"\n[process]\nenv = { LAYER = \"base\" }\n")
	writeFile(t, filepath.Join(local, "job.toml"), "extends = \"./base.toml\"\n[process]\nhostname = \"job\"\nenv = { LAYER = \"job\" }\n")
	r = e.run(t, nil, "run", "--policy", "./policies/job.toml", "--", "sh", "-c", `hostname; echo $TEAM $LAYER`)
	if want := "job\nyes job\n"; r.code != 0 || r.stdout != want {
		t.Errorf("--policy ./policies/job.toml: exit %d %q %q, want %q", r.code, r.stdout, r.stderr, want)
	}

	r = e.run(t, nil, "policy", "list")
	first := strings.Join(strings.Fields(strings.SplitN(r.stdout, "\n", 2)[0]), " ")
	if r.code != 0 || first != "team "+filepath.Join(dir, "team.toml")+" team: strict with a scratch area" {
		t.Errorf("policy list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = e.run(t, nil, "policy", "explain", "./policies/job.toml", "--", "make")
	wantChain := "chain        " + filepath.Join(local, "job.toml") + " -> " + filepath.Join(local, "base.toml") + " -> " +
		filepath.Join(dir, "team.toml") + " -> builtin:strict -> builtin:default\n"
	if r.code != 0 || !strings.Contains(r.stdout, wantChain) || !strings.Contains(r.stdout, "hostname     job\n") {
		t.Errorf("policy explain: exit %d, want %q in\n%s%s", r.code, wantChain, r.stdout, r.stderr)
	}
	r = e.run(t, nil, "policy", "check", "policies/job.toml", "policies/base.toml")
	if r.code != 0 || r.stdout != "ok policies/job.toml\nok policies/base.toml\n" {
		t.Errorf("policy check: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = e.run(t, nil, "policy", "show", "team")
	if b, _ := os.ReadFile(filepath.Join(dir, "team.toml")); r.code != 0 || r.stdout != string(b) {
		t.Errorf("policy show team: exit %d %q", r.code, r.stdout)
	}
}

// TestBrokenPolicy: a broken policy stops warden before anything exists:
// exit 125, the position of the problem, no report file (though the policy
// names one), no process, nothing in the current directory.
func TestBrokenPolicy(t *testing.T) {
	e, _ := projectEnv(t)
	writeFile(t, filepath.Join(e.cwd, "broken.toml"), `extends = "default"

[report]
file = "${CWD}/report.json"

[limits]
enforce = "required"
memory = "2GB"
`)
	before := dirNames(t, e.cwd)
	marker := fmt.Sprintf("%d", 100000+time.Now().UnixNano()%800000)
	start := time.Now()
	r := e.run(t, nil, "run", "--policy", "./broken.toml", "--", "sh", "-c", "touch ran; sleep "+marker)
	want := "warden: error: policy " + filepath.Join(e.cwd, "broken.toml") + `:8:10: limits.memory: "2GB" is not a size`
	if r.code != exitWarden || !strings.HasPrefix(r.stderr, want) || r.stdout != "" {
		t.Errorf("broken policy: exit %d stdout %q stderr %q; want 125 and %q", r.code, r.stdout, r.stderr, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refusing a broken policy took %v", d)
	}
	if after := dirNames(t, e.cwd); !slices.Equal(before, after) {
		t.Errorf("the current directory changed: %v -> %v (want no report, nothing run)", before, after)
	}
	if pids := findProc(t, "sleep "+marker); len(pids) > 0 {
		t.Errorf("processes of a refused run exist: %v", pids)
	}
	r = e.run(t, nil, "policy", "check", "broken.toml")
	if r.code != exitWarden || !strings.Contains(r.stderr, "broken.toml:8:10: limits.memory") || r.stdout != "" {
		t.Errorf("policy check broken.toml: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestPolicySeccompNames: an unknown syscall name in a policy is an error
// at its file:line:col when warden runs it; "?name" marks one that may be
// unknown here, which is skipped.
func TestPolicySeccompNames(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	typo := filepath.Join(dir, "typo.toml")
	os.WriteFile(typo, []byte("extends = \"default\"\n[seccomp]\nallow = [\"ptrac\"]\n"), 0o644)
	r := e.run(t, nil, "run", "--policy", typo, "--", "true")
	if r.code != 125 || !strings.Contains(r.stderr, typo+":3:10: seccomp.allow[0]") || !strings.Contains(r.stderr, `"ptrac"`) {
		t.Errorf("typo: exit %d %q, want 125 at %s:3:10", r.code, r.stderr, typo)
	}
	opt := filepath.Join(dir, "opt.toml")
	os.WriteFile(opt, []byte("extends = \"default\"\n[seccomp]\ndeny = [\"?frobnicate_at\", \"getppid\"]\n"), 0o644)
	r = e.run(t, nil, "run", "--policy", opt, "--log-level", "info", "--", "python3", "-c",
		"import os\ntry:\n  os.getppid(); print('allowed')\nexcept OSError as e: print('denied', e.errno)")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "denied 1" && strings.TrimSpace(r.stdout) != "allowed" {
		t.Errorf("optional name: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, `frobnicate_at`) || !strings.Contains(r.stderr, "is unknown here; skipped") {
		t.Errorf("optional unknown name not reported: %q", r.stderr)
	}
}

// TestCwdFallback: a policy that does not show the current directory runs
// the command in $HOME and says so; an explicit chdir that does not exist
// is an error.
func TestCwdFallback(t *testing.T) {
	e := newEnv(t)
	bare := filepath.Join(t.TempDir(), "bare.toml")
	os.WriteFile(bare, []byte("description = \"no binds\"\n"), 0o644)
	r := e.run(t, nil, "run", "--policy", bare, "--", "pwd")
	if r.code != 0 || strings.TrimSpace(r.stdout) != e.home || !strings.Contains(r.stderr, "warden: warning: the current directory is not visible in the jail") {
		t.Errorf("fallback: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = e.run(t, nil, "run", "--chdir", "/does/not/exist", "--", "pwd")
	if r.code != 125 || !strings.Contains(r.stderr, "chdir /does/not/exist") {
		t.Errorf("explicit chdir: exit %d %q", r.code, r.stderr)
	}
}

// TestLimitWarningsBeforeTheCommand: with --limits best-effort on a host
// that cannot enforce the limits, warden says so before the command runs
// (a long CI job, or one that gets killed, must not learn it at the end),
// once per cause rather than once per limit, and the report has it too.
func TestLimitWarningsBeforeTheCommand(t *testing.T) {
	probe := cgroup.Probe()
	if probe.Missing["memory"] == "" || probe.Missing["cpu"] == "" {
		t.Skip("this host can enforce memory and cpu limits: no warning to see (the VM lane checks the enforced case)")
	}
	e := newEnv(t)
	report := filepath.Join(e.home, "r.json")
	r := e.run(t, nil, "run", "--limits", "best-effort", "--memory", "1G", "--cpus", "1", "--report", report, "--",
		"sh", "-c", "echo COMMAND >&2")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	var warnings []string
	cmdAt := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "warden: warning: limit") {
			warnings = append(warnings, l)
			if cmdAt >= 0 {
				t.Errorf("a limit warning after the command's output: %q", l)
			}
		}
		if l == "COMMAND" {
			cmdAt = i
		}
	}
	if len(warnings) != 1 || !regexp.MustCompile(`^warden: warning: limits memory, ([\w-]+, )*cpus not enforced`).MatchString(warnings[0]) {
		t.Errorf("limit warnings %q; want one naming memory and cpus", warnings)
	}
	b, err := os.ReadFile(report)
	if err != nil || !regexp.MustCompile(`limits memory, ([\w-]+, )*cpus not enforced`).Match(b) {
		t.Errorf("report: %v; want the warning in it:\n%s", err, b)
	}
}

// TestBuildFromHome: `--policy build` started in $HOME cannot show the
// project ($HOME) and hide $HOME at once: one line that says to run from a
// project directory, exit 125, nothing about editing the built-in; and
// `warden policy list` there does not call build INVALID (issue 15 item 3).
func TestBuildFromHome(t *testing.T) {
	e := newEnv(t)
	inHome := *e
	inHome.cwd = e.home
	r := inHome.run(t, nil, "run", "--policy", "build", "--", "sh", "-c", "echo RAN")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code != 125 || strings.Contains(r.stdout, "RAN") || len(lines) != 1 ||
		!strings.Contains(r.stderr, "run it from a project directory") || strings.Contains(r.stderr, "replace = [") {
		t.Errorf("build from $HOME: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = inHome.run(t, nil, "policy", "list")
	if r.code != 0 || strings.Contains(r.stdout, "INVALID") || !strings.Contains(r.stdout, "not from this directory") {
		t.Errorf("policy list from $HOME: exit %d stdout %q", r.code, r.stdout)
	}
}

// TestBuildCaches: `go build` under --policy build works with no flags:
// the build cache is a cache mount warden keeps, so the second build runs
// at warm-cache speed, and the host's own ~/.cache/go-build is never
// touched (issue 15 item 1).
func TestBuildCaches(t *testing.T) {
	gotool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gotool); err != nil {
		t.Fatalf("the Go toolchain that built this test is not at %s: %v", gotool, err)
	}
	e := newEnv(t)
	for name, content := range map[string]string{
		"go.mod":  "module hello\n\ngo 1.21\n",
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello from the jail\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(e.cwd, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := func() time.Duration {
		start := time.Now()
		r := e.run(t, nil, "run", "--policy", "build", "--", gotool, "build", "-o", "hello", ".")
		if r.code != 0 {
			t.Fatalf("go build under --policy build: exit %d: %s", r.code, r.stderr)
		}
		return time.Since(start)
	}
	cold := build()
	warm := build()
	t.Logf("go build under --policy build: cold %v, warm %v", cold, warm)
	if warm > cold/2 {
		t.Errorf("the second build took %v after %v: the build cache did not persist", warm, cold)
	}
	if out, err := exec.Command(filepath.Join(e.cwd, "hello")).Output(); err != nil || string(out) != "hello from the jail\n" {
		t.Errorf("built program: %q %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(e.home, ".cache", "go-build")); !os.IsNotExist(err) {
		t.Errorf("the host's ~/.cache/go-build was touched: %v", err)
	}
	ents, err := os.ReadDir(filepath.Join(e.home, ".cache", "warden", "caches", "build", "go-build"))
	if err != nil || len(ents) == 0 {
		t.Errorf("warden's go-build cache: %d entries, %v", len(ents), err)
	}
}
