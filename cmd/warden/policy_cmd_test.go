//go:build linux

package main

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/warden-sandbox/warden/policies"
	"github.com/warden-sandbox/warden/sandbox"
	"github.com/warden-sandbox/warden/sandbox/cgroup"
	"github.com/warden-sandbox/warden/userns"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/explain")

type fakeInfo struct {
	name string
	mode fs.FileMode
}

func (f fakeInfo) Name() string       { return f.name }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fakeInfo) Sys() any           { return nil }

// explainHost is a merged-/usr Debian-like machine for user alice (1000)
// with subordinate ids, working in /home/alice/src/app of the git
// repository /home/alice/src. Its environment holds secrets that must never
// appear in explain's output.
func explainHost() *sandbox.Host {
	dirs := map[string]bool{"/usr": true, "/etc": true, "/opt": true, "/var": true, "/var/lib": true, "/var/cache": true, "/home/alice": true,
		"/home/alice/src": true, "/home/alice/src/.git": true, "/home/alice/src/app": true,
		"/home/alice/.ssh": true, "/home/alice/.aws": true, "/srv/data": true}
	files := map[string]bool{"/home/alice/.netrc": true}
	links := map[string]string{"/bin": "usr/bin", "/sbin": "usr/sbin", "/lib": "usr/lib", "/lib64": "usr/lib64"}
	stat := func(p string) (fs.FileInfo, error) {
		_, isLink := links[p] // every link points to a directory under /usr
		switch {
		case dirs[p] || isLink:
			return fakeInfo{filepath.Base(p), fs.ModeDir | 0o755}, nil
		case files[p]:
			return fakeInfo{filepath.Base(p), 0o644}, nil
		}
		return nil, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
	}
	return &sandbox.Host{
		UID: 1000, GID: 1000, User: "alice", Home: "/home/alice", Cwd: "/home/alice/src/app",
		Environ: []string{"PATH=/usr/bin:/bin", "HOME=/home/alice", "LANG=C.UTF-8", "TERM=xterm", "CI=true",
			"AWS_SECRET_ACCESS_KEY=hunter2", "GITHUB_TOKEN=ghp_secret", "SSH_AUTH_SOCK=/run/agent"},
		SubUID:      []userns.IDMap{{Host: 100000, Count: 65536}},
		SubGID:      []userns.IDMap{{Host: 100000, Count: 65536}},
		HaveHelpers: true,
		Lstat: func(p string) (fs.FileInfo, error) {
			if _, ok := links[p]; ok {
				return fakeInfo{filepath.Base(p), fs.ModeSymlink | 0o777}, nil
			}
			return stat(p)
		},
		Stat: stat,
		Readlink: func(p string) (string, error) {
			if l, ok := links[p]; ok {
				return l, nil
			}
			return "", &fs.PathError{Op: "readlink", Path: p, Err: syscall.EINVAL}
		},
		EvalSymlinks: func(p string) (string, error) {
			if _, err := stat(p); err != nil {
				return "", err
			}
			return p, nil
		},
	}
}

// hermetic points the parts of the environment that warden reads (config
// and cache directories, TMPDIR) at fresh directories and returns the user
// policy directory.
func hermetic(t *testing.T) string {
	t.Helper()
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("TMPDIR", "/tmp")
	dir := filepath.Join(cfg, "warden", "policies")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runPolicy runs `warden policy ARGS...` against host and returns the exit
// status, stdout and stderr.
func runPolicy(host *sandbox.Host, args ...string) (int, string, string) {
	return runPolicyProbe(host, hybridProbe, args...)
}

func runPolicyProbe(host *sandbox.Host, probe cgroup.Report, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	c := policyCmd{host: func() (*sandbox.Host, error) { return host, nil }, probe: func() cgroup.Report { return probe },
		stdout: &out, stderr: &errb}
	code := c.run(args)
	return code, out.String(), errb.String()
}

// Probes of three hosts: memory and pids on cgroup v1 (this development
// VM), a delegated cgroup v2 subtree with every controller, and a
// cgroup v2 host where a systemd user manager would be asked for a scope.
var (
	hybridProbe = cgroup.Report{Mode: "hybrid", Delegated: true, Missing: map[string]string{
		"memory": "the memory controller is attached to a cgroup v1 hierarchy",
		"pids":   "the pids controller is attached to a cgroup v1 hierarchy"}}
	delegatedProbe = cgroup.Report{Mode: "unified", Delegated: true, Missing: map[string]string{}}
	userBusProbe   = cgroup.Report{Mode: "unified", UserBus: "unix:path=/run/user/1000/bus", Missing: map[string]string{}}
)

var bpfCount = regexp.MustCompile(`(\d+) BPF instructions`)

func TestExplainGolden(t *testing.T) {
	userDir := hermetic(t)
	writeFile(t, filepath.Join(userDir, "team.toml"), `extends = "ci"
description = "team CI: data read-only, more memory, TZ set"
replace = ["process.env_pass"]

[filesystem]
ro = ["/srv/data"]

[process]
env = { TZ = "UTC" }
env_pass = ["LANG"]

[limits]
memory = "8G"
cpus = 1.5
`)
	for _, tc := range []struct {
		name  string
		args  []string
		probe *cgroup.Report
	}{
		{"default", []string{"default", "--", "make", "test"}, nil},
		{"strict", []string{"strict", "--", "ls"}, nil},
		{"build", []string{"build", "--", "cc", "-c", "x.c"}, nil},
		{"ci", []string{"ci", "--", "make", "test"}, nil},
		{"net", []string{"net", "--", "curl", "https://example.org"}, nil},
		{"net-publish", []string{"net", "-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", "--allow-host-loopback", "--", "srv"}, nil},
		{"no-policy-no-command", nil, nil},
		{"ci-with-flags", []string{"ci", "--limits", "best-effort", "--memory", "1G", "--env-pass", "CI*",
			"--ro", "/srv/data:/data", "--timeout", "10m", "--as-root", "--map", "single", "--cap-add", "chown",
			"--rlimit", "nofile=64:128", "--seccomp", "strict", "--", "sh", "-c", "echo $HOME; make"}, nil},
		{"ci-toml", []string{"ci", "--toml", "--env", "TOKEN=sekrit", "--env-pass", "GITHUB_*"}, nil},
		{"ci-delegated-host", []string{"ci", "--", "make"}, &delegatedProbe},
		{"ci-user-manager-host", []string{"ci", "--cpus", "2", "--", "make"}, &userBusProbe},
		{"user-policy-extends", []string{"team", "--", "make"}, nil},
		{"policy-flag", []string{"--policy", "build", "--hostname", "b1", "--", "true"}, nil},
		{"weights", []string{"default", "--cpu-weight", "50", "--io-weight", "300", "--limits", "best-effort", "--", "true"}, &delegatedProbe},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.args) > 0 {
				if _, err := os.Stat("/etc/warden/policies/" + tc.args[0] + ".toml"); err == nil {
					t.Skipf("/etc/warden/policies/%s.toml shadows the built-in on this host", tc.args[0])
				}
			}
			probe := hybridProbe
			if tc.probe != nil {
				probe = *tc.probe
			}
			code, stdout, stderr := runPolicyProbe(explainHost(), probe, append([]string{"explain"}, tc.args...)...)
			got := stdout
			if code != 0 {
				got += "--- exit " + strconv.Itoa(code) + "\n" + stderr
			}
			if m := bpfCount.FindStringSubmatch(got); m != nil {
				if n, _ := strconv.Atoi(m[1]); n < 4 {
					t.Errorf("seccomp filter of %d instructions: too short to be a filter", n)
				}
			}
			// The instruction count depends on the libseccomp version.
			got = bpfCount.ReplaceAllString(got, "N BPF instructions")
			got = strings.ReplaceAll(got, userDir, "$XDG_CONFIG_HOME/warden/policies")
			got = strings.ReplaceAll(got, os.Getenv("XDG_CACHE_HOME"), "$XDG_CACHE_HOME")
			for _, secret := range []string{"hunter2", "ghp_secret", "/run/agent", "C.UTF-8", "=true", "sekrit"} {
				if strings.Contains(got, secret) {
					t.Errorf("explain printed the value %q of a host variable", secret)
				}
			}
			checkGolden(t, filepath.Join("testdata", "explain", tc.name+".golden"), got)
		})
	}
}

// TestExplainProgramGolden: the jail program of every built-in policy, as
// `warden policy explain NAME --program` lists it, is reviewed as a golden
// file: a change in what a jail does shows up in the diff.
func TestExplainProgramGolden(t *testing.T) {
	hermetic(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"default", []string{"default", "--", "make", "test"}},
		{"strict", []string{"strict", "--", "ls"}},
		{"build", []string{"build", "--", "cc", "-c", "x.c"}},
		{"ci", []string{"ci", "--", "make", "test"}},
		{"net", []string{"net", "--", "curl", "https://example.org"}},
		{"flags", []string{"default", "--as-root", "--cap-add", "chown", "--rlimit", "nofile=64:128", "--seccomp-audit",
			"--hostname", "b1", "--", "sh", "-c", "id"}},
		{"overlay", []string{"default", "--overlay", "/srv/data:/data", "--", "make"}},
		{"rootfs", []string{"default", "--rootfs", "/usr", "--ro", "/srv/data:/data", "--", "sh"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat("/etc/warden/policies/" + tc.args[0] + ".toml"); err == nil {
				t.Skipf("/etc/warden/policies/%s.toml shadows the built-in on this host", tc.args[0])
			}
			args := append([]string{"explain", tc.args[0], "--program"}, tc.args[1:]...)
			code, stdout, stderr := runPolicyProbe(explainHost(), hybridProbe, args...)
			got := stdout
			if code != 0 {
				got += "--- exit " + strconv.Itoa(code) + "\n" + stderr
			}
			// The instruction count depends on the libseccomp version.
			got = bpfCount.ReplaceAllString(got, "N BPF instructions")
			got = strings.ReplaceAll(got, os.Getenv("XDG_CACHE_HOME"), "$XDG_CACHE_HOME")
			for _, want := range []string{"pivot_root", "PR_SET_NO_NEW_PRIVS", "execve("} {
				if code == 0 && !strings.Contains(got, want) {
					t.Errorf("program lacks %s", want)
				}
			}
			checkGolden(t, filepath.Join("testdata", "explain", tc.name+".program.golden"), got)
		})
	}
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestExplainGolden -update to create it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s (-want +got):\n%s", path, d)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestExplainMatchesRun checks that explain resolves exactly as run does:
// the plan it prints is the one buildOptions + Resolve give for the same
// flags.
func TestExplainMatchesRun(t *testing.T) {
	hermetic(t)
	h := explainHost()
	args := []string{"--policy", "strict", "--rw", "/srv/data", "--env", "A=1", "--", "true"}
	fs, o := runFlags()
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	opts, err := buildOptions(o, fs.Args(), h)
	if err != nil {
		t.Fatal(err)
	}
	plan, _, err := sandbox.Resolve(opts, h)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runPolicy(h, append([]string{"explain"}, args...)...)
	if code != 0 {
		t.Fatalf("explain: exit %d: %s", code, stderr)
	}
	for _, op := range plan.Mounts {
		if !strings.Contains(stdout, "\n  "+op.String()+"\n") {
			t.Errorf("run's mount %q is missing from explain's output", op)
		}
	}
	if !strings.Contains(stdout, "hash         "+plan.Policy.Hash+"\n") || plan.Policy.Hash == "" {
		t.Errorf("explain does not print run's policy hash %q:\n%s", plan.Policy.Hash, stdout)
	}
	if !strings.Contains(stdout, "chain        command line -> builtin:strict -> builtin:default\n") {
		t.Errorf("explain's chain does not show the flags layer over strict over default:\n%s", stdout)
	}
	if !strings.Contains(stdout, "\n  A\n") || strings.Contains(stdout, "A=1") {
		t.Errorf("explain must list the name A and not its value:\n%s", stdout)
	}
	code, stdout, stderr = runPolicy(h, append([]string{"explain", "--toml"}, args...)...)
	if code != 0 || !strings.Contains(stdout, "# hash: sha256:"+plan.Policy.Hash+"\n") || strings.Contains(stdout, `"1"`) {
		t.Errorf("explain --toml: exit %d %q; want run's hash %s and no env value\n%s", code, stderr, plan.Policy.Hash, stdout)
	}
}

func TestExplainErrors(t *testing.T) {
	hermetic(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"policy twice", []string{"ci", "--policy", "build"}, `policy given twice ("ci" and --policy "build")`},
		{"bad flag", []string{"ci", "--bogus"}, "unknown flag: --bogus"},
		{"unknown policy", []string{"nosuch"}, `"nosuch" not found`},
		{"missing file", []string{"./nosuch.toml"}, "nosuch.toml"},
		{"flag contradicts policy", []string{"ci", "--limits", "off"}, "limits.enforce"},
		{"bad map", []string{"default", "--map", "bogus"}, "bogus"},
		{"missing ro source", []string{"default", "--ro", "/nope", "--", "x"}, "--ro /nope: no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runPolicy(explainHost(), append([]string{"explain"}, tc.args...)...)
			if code != exitWarden || !strings.Contains(stderr, tc.want) || stdout != "" {
				t.Errorf("explain %v = %d, stdout %q, stderr %q; want 125, nothing on stdout, stderr containing %q",
					tc.args, code, stdout, stderr, tc.want)
			}
		})
	}
	code, stdout, _ := runPolicy(explainHost(), "explain", "--help")
	if code != 0 || !strings.Contains(stdout, "--memory") {
		t.Errorf("explain --help = %d %q, want 0 and the run flags", code, stdout)
	}
}

func TestPolicyList(t *testing.T) {
	dir := hermetic(t)
	writeFile(t, filepath.Join(dir, "team.toml"), "extends = \"ci\"\ndescription = \"team CI\"\n")
	writeFile(t, filepath.Join(dir, "default.toml"), "extends = \"default\"\ndescription = \"my default\"\n")
	writeFile(t, filepath.Join(dir, "broken.toml"), "[limits]\nmemory = \"2GB\"\n")
	writeFile(t, filepath.Join(dir, "notes.txt"), "not a policy")
	writeFile(t, filepath.Join(dir, "bad name.toml"), "description = \"x\"\n")
	code, stdout, stderr := runPolicy(explainHost(), "list")
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, stderr)
	}
	var got [][]string
	for _, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			t.Fatalf("list line %q: want NAME SOURCE DESCRIPTION", line)
		}
		src := strings.Replace(f[1], dir, "$DIR", 1)
		got = append(got, []string{f[0], src, strings.Join(f[2:], " ")})
	}
	if _, err := os.Stat("/etc/warden/policies"); err == nil {
		t.Skip("/etc/warden/policies exists on this host and adds entries; the expected list assumes it does not")
	}
	want := [][]string{
		{"broken", "$DIR/broken.toml", `INVALID: policy ` + dir + `/broken.toml:2:10: limits.memory: "2GB" is not a size; use e.g. "2G" or "512M" (powers of 1024), or bytes`},
		{"default", "$DIR/default.toml", "my default"},
		{"team", "$DIR/team.toml", "team CI"},
		{"build", "builtin:build", "hermetic build step: project read-write, no network, no $HOME"},
		{"ci", "builtin:ci", "CI job: project read-write, limits required, report on"},
		{"default", "builtin:default", "(shadowed by " + dir + "/default.toml) run as yourself: project writable, $HOME empty, no network"},
		{"net", "builtin:net", "default plus outbound network"},
		{"strict", "builtin:strict", "current directory read-only, only /tmp writable, strict seccomp"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("policy list (-want +got):\n%s", d)
	}
	if code, _, stderr := runPolicy(explainHost(), "list", "extra"); code != exitWarden || !strings.Contains(stderr, "takes no arguments") {
		t.Errorf("list extra = %d %q, want 125", code, stderr)
	}
}

func TestPolicyShow(t *testing.T) {
	dir := hermetic(t)
	user := "extends = \"ci\"\n# as written, comments and all\n[limits]\nmemory = \"2GB\"\n"
	writeFile(t, filepath.Join(dir, "team.toml"), user)
	local := filepath.Join(t.TempDir(), "local.toml")
	notFile := filepath.Join(t.TempDir(), "dir.toml")
	if err := os.Mkdir(notFile, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, local, "description = \"local\"\n")
	h := explainHost()
	for _, name := range policies.Builtins() {
		if _, err := os.Stat("/etc/warden/policies/" + name + ".toml"); err == nil {
			continue
		}
		want, _ := policies.BuiltinSource(name)
		code, stdout, stderr := runPolicy(h, "show", name)
		if code != 0 || stdout != string(want) {
			t.Errorf("show %s = %d %q, want the embedded source (stderr %q)", name, code, stdout, stderr)
		}
	}
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"user policy by name, even when invalid", []string{"team"}, 0, user},
		{"path", []string{local}, 0, "description = \"local\"\n"},
		{"unknown name", []string{"nosuch"}, exitWarden, `"nosuch" not found`},
		{"bad name", []string{"a b"}, exitWarden, "not a policy name"},
		{"missing file", []string{"/nope/x.toml"}, exitWarden, "no such file"},
		{"not a regular file", []string{notFile}, exitWarden, "not a regular file"},
		{"no argument", nil, exitWarden, "want one NAME or FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runPolicy(h, append([]string{"show"}, tc.args...)...)
			got := stdout
			if code != 0 {
				got = stderr
			}
			if code != tc.wantCode || (code == 0 && got != tc.want) || (code != 0 && !strings.Contains(got, tc.want)) {
				t.Errorf("show %v = %d %q, want %d and %q", tc.args, code, got, tc.wantCode, tc.want)
			}
		})
	}
}

// TestPolicyShowFindsWhatLoadLoads: for every name, show prints the file
// that policies.Load resolves the name to.
func TestPolicyShowFindsWhatLoadLoads(t *testing.T) {
	dir := hermetic(t)
	writeFile(t, filepath.Join(dir, "strict.toml"), "extends = \"strict\"\ndescription = \"mine\"\n")
	writeFile(t, filepath.Join(dir, "team.toml"), "extends = \"ci\"\n")
	h := explainHost()
	env := policyEnv(h)
	for _, name := range append(policies.Builtins(), "team") {
		pol, err := policies.Load(name, env)
		if err != nil {
			t.Fatal(err)
		}
		data, src, err := findPolicy(name, h.Cwd, env.ConfigDirs)
		if err != nil || src != pol.Source {
			t.Errorf("findPolicy(%s) = %s, %v; Load reads %s", name, src, err, pol.Source)
		}
		if len(data) == 0 {
			t.Errorf("findPolicy(%s): empty text", name)
		}
	}
}

func TestPolicyCheck(t *testing.T) {
	hermetic(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	writeFile(t, good, "extends = \"ci\"\n[limits]\nmemory = \"2G\"\n")
	child := filepath.Join(dir, "child.toml")
	writeFile(t, child, "extends = \"./good.toml\"\n[process]\nhostname = \"job\"\n")
	badSize := filepath.Join(dir, "bad-size.toml")
	writeFile(t, badSize, "extends = \"ci\"\n\n[limits]\nmemory = \"2GB\"\n")
	unknownKey := filepath.Join(dir, "unknown-key.toml")
	writeFile(t, unknownKey, "[process]\nhostnme = \"x\"\n")
	badSyscall := filepath.Join(dir, "bad-syscall.toml")
	writeFile(t, badSyscall, "[seccomp]\ndeny = [\"read\", \"boguscall\"]\n")
	badProfile := filepath.Join(dir, "bad-profile.toml")
	writeFile(t, badProfile, "[seccomp]\nprofile = \"/nope/profile.json\"\n")
	cycle := filepath.Join(dir, "cycle.toml")
	writeFile(t, cycle, "extends = \"./cycle.toml\"\n")
	contra := filepath.Join(dir, "contra.toml")
	writeFile(t, contra, "[filesystem]\nro = [\"/srv/data\"]\nhide = [\"/srv/data\"]\n")
	for _, tc := range []struct {
		name       string
		files      []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"valid", []string{good, child}, 0, "ok " + good + "\nok " + child + "\n", ""},
		{"bad size", []string{badSize}, exitWarden, "",
			"warden: error: policy " + badSize + `:4:10: limits.memory: "2GB" is not a size; use e.g. "2G" or "512M" (powers of 1024), or bytes` + "\n"},
		{"unknown key", []string{unknownKey}, exitWarden, "", "policy " + unknownKey + ":2:1: process.hostnme"},
		{"unknown syscall", []string{badSyscall}, exitWarden, "", "policy " + badSyscall + ":2:17: seccomp.deny[1]: seccomp: syscall \"boguscall\": unknown syscall"},
		{"missing profile", []string{badProfile}, exitWarden, "", "policy " + badProfile + ":2:11: seccomp.profile: "},
		{"cycle", []string{cycle}, exitWarden, "", "extends cycle"},
		{"contradiction", []string{contra}, exitWarden, "", "policy " + contra + ":3:"},
		{"one bad of three", []string{good, badSize, child}, exitWarden, "ok " + good + "\nok " + child + "\n", badSize + ":4:10"},
		{"missing file", []string{filepath.Join(dir, "nope.toml")}, exitWarden, "", "nope.toml"},
		{"no files", nil, exitWarden, "", "want one or more FILEs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runPolicy(explainHost(), append([]string{"check"}, tc.files...)...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.wantCode, stderr)
			}
			if d := cmp.Diff(tc.wantStdout, stdout); d != "" {
				t.Errorf("stdout (-want +got):\n%s", d)
			}
			if !strings.Contains(stderr, tc.wantStderr) || (tc.wantStderr == "") != (stderr == "") {
				t.Errorf("stderr %q, want it to contain %q", stderr, tc.wantStderr)
			}
		})
	}
	// A bare file name is a file in the current directory, never a name on
	// the search path.
	h := explainHost()
	h.Cwd = dir
	if code, stdout, stderr := runPolicy(h, "check", "good.toml", "ci"); code != exitWarden ||
		stdout != "ok good.toml\n" || !strings.Contains(stderr, "ci") {
		t.Errorf("check good.toml ci = %d %q %q; want ci read as ./ci (missing)", code, stdout, stderr)
	}
}

func TestPolicyUsage(t *testing.T) {
	if code, _, stderr := runPolicy(explainHost()); code != exitWarden || !strings.Contains(stderr, "warden policy list") {
		t.Errorf("policy with no subcommand = %d %q", code, stderr)
	}
	if code, stdout, _ := runPolicy(explainHost(), "help"); code != 0 || !strings.Contains(stdout, "warden policy check FILE") {
		t.Errorf("policy help = %d %q", code, stdout)
	}
	if code, _, stderr := runPolicy(explainHost(), "frobnicate"); code != exitWarden || !strings.Contains(stderr, `unknown subcommand "frobnicate"`) {
		t.Errorf("policy frobnicate = %d %q", code, stderr)
	}
}

func TestLimitsHost(t *testing.T) {
	for _, tc := range []struct {
		name  string
		probe cgroup.Report
		want  *sandbox.LimitsHost
	}{
		{"delegated, memory on v1", hybridProbe, &sandbox.LimitsHost{Missing: hybridProbe.Missing}},
		{"delegated, all there", delegatedProbe, &sandbox.LimitsHost{Missing: map[string]string{}}},
		{"systemd would be asked", userBusProbe, &sandbox.LimitsHost{Missing: map[string]string{},
			Note: "no delegated cgroup yet; run asks the systemd user manager for a delegated scope first"}},
		{"nobody to ask", cgroup.Report{Mode: "unified", Missing: map[string]string{}, Problem: "cgroup /user.slice is not delegated"},
			&sandbox.LimitsHost{Missing: map[string]string{"cpu": "cgroup /user.slice is not delegated",
				"io": "cgroup /user.slice is not delegated", "memory": "cgroup /user.slice is not delegated",
				"pids": "cgroup /user.slice is not delegated"}}},
		{"no cgroup2", cgroup.Report{Mode: "v1", Missing: map[string]string{"cpu": "no cgroup2", "io": "no cgroup2",
			"memory": "no cgroup2", "pids": "no cgroup2"}, Problem: "no usable cgroup2"},
			&sandbox.LimitsHost{Missing: map[string]string{"cpu": "no cgroup2", "io": "no cgroup2", "memory": "no cgroup2", "pids": "no cgroup2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, limitsHost(tc.probe)); d != "" {
				t.Errorf("limitsHost (-want +got):\n%s", d)
			}
		})
	}
}

// TestExplainWritesNothing: `warden policy explain` changes nothing on the
// host, not even the seccomp cache (issue 15 item 12).
func TestExplainWritesNothing(t *testing.T) {
	hermetic(t)
	cache := os.Getenv("XDG_CACHE_HOME")
	for _, args := range [][]string{{"explain", "default", "--", "true"}, {"explain", "strict", "--program", "--", "true"}, {"explain", "build", "--", "true"}} {
		if code, _, stderr := runPolicyProbe(explainHost(), hybridProbe, args...); code != 0 {
			t.Fatalf("%v: exit %d %s", args, code, stderr)
		}
	}
	var files []string
	filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 0 {
		t.Errorf("explain wrote %v", files)
	}
}

// TestExplainImportsNothing: explaining with --image PATH changes nothing:
// it refuses to import, and the image store is not even made.
func TestExplainImportsNothing(t *testing.T) {
	hermetic(t)
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	ref := filepath.Join(t.TempDir(), "img.tar")
	if err := os.WriteFile(ref, []byte("not read"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runPolicyProbe(explainHost(), hybridProbe, "explain", "default", "--image", ref, "--", "sh")
	if code != 125 || !strings.Contains(stderr, "does not import") {
		t.Errorf("explain --image PATH: %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(data, "warden")); !os.IsNotExist(err) {
		t.Errorf("explaining made the image store: %v", err)
	}
}
