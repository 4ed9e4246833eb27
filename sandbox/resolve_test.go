package sandbox

import (
	"flag"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/warden-sandbox/warden/policies"
	"github.com/warden-sandbox/warden/sandbox/cgroup"
	"github.com/warden-sandbox/warden/sandbox/mount"
	"github.com/warden-sandbox/warden/userns"
)

var update = flag.Bool("update", false, "rewrite golden files")

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

// fakeHost is a merged-/usr Debian-like machine for user alice (1000).
func fakeHost(cwd string) *Host {
	dirs := map[string]bool{"/usr": true, "/etc": true, "/opt": true, "/var": true, "/var/lib": true, "/var/cache": true, "/home/alice": true,
		"/home/alice/src": true, "/home/alice/.ssh": true, "/srv/data": true, "/tmp/build": true}
	files := map[string]bool{"/home/alice/.netrc": true, "/srv/data/one.csv": true}
	links := map[string]string{"/bin": "usr/bin", "/sbin": "usr/sbin", "/lib": "usr/lib", "/lib64": "usr/lib64",
		"/home/alice/latest": "/srv/data"}
	stat := func(p string) (fs.FileInfo, error) {
		if l, ok := links[p]; ok {
			p = l
		}
		switch {
		case dirs[p]:
			return fakeInfo{filepath.Base(p), fs.ModeDir | 0o755}, nil
		case files[p]:
			return fakeInfo{filepath.Base(p), 0o644}, nil
		}
		return nil, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
	}
	return &Host{
		UID: 1000, GID: 1000, User: "alice", Home: "/home/alice", Cwd: cwd,
		Environ: []string{"PATH=/usr/bin:/bin", "HOME=/home/alice", "LANG=C.UTF-8", "LC_ALL=C", "TERM=xterm",
			"AWS_SECRET_ACCESS_KEY=secret", "GITHUB_TOKEN=tok", "SSH_AUTH_SOCK=/run/x", "CI=true", "CI_JOB=7"},
		SubUID: []userns.IDMap{{Host: 100000, Count: 65536}}, SubGID: []userns.IDMap{{Host: 100000, Count: 65536}},
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
			if l, ok := links[p]; ok && strings.HasPrefix(l, "/") {
				p = l
			}
			if _, err := stat(p); err != nil {
				return "", err
			}
			return p, nil
		},
	}
}

// policyOptions is what cmd/warden does: load a built-in policy for the
// host, then translate it.
func policyOptions(t *testing.T, name string, h *Host) Options {
	t.Helper()
	pol, err := policies.Load(name, PolicyEnv(h, func(string) (string, bool) { return "", false }, nil, h.Cwd, "/tmp"))
	if err != nil {
		t.Fatal(err)
	}
	o, err := OptionsFromPolicy(pol, []string{"true"})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestResolveGolden(t *testing.T) {
	for _, tc := range []struct {
		name, policy string
		cwd          string
		mod          func(*Options)
	}{
		{"default", "default", "/home/alice/src", nil},
		{"cwd-is-home", "default", "/home/alice", nil},
		{"cwd-outside-home", "default", "/tmp/build", nil},
		{"cwd-root", "default", "/", nil},
		{"strict", "strict", "/home/alice/src", nil},
		{"build", "build", "/home/alice/src", nil},
		{"ro-flag", "default", "/home/alice/src", func(o *Options) {
			o.RO = append(o.RO, PathMap{Src: "/srv/data", Dst: "/data"}, PathMap{Src: "/home/alice/latest", Dst: "/latest"})
		}},
		{"rw-flag", "default", "/home/alice/src", func(o *Options) { o.RW = append(o.RW, PathMap{Src: "/srv/data", Dst: "/srv/data"}) }},
		{"ro-file", "default", "/home/alice/src", func(o *Options) { o.RO = append(o.RO, PathMap{Src: "/srv/data/one.csv", Dst: "/in.csv"}) }},
		{"tmpfs-flag", "default", "/home/alice/src", func(o *Options) { o.Tmpfs = append(o.Tmpfs, "/scratch", "/home/alice/src/cache") }},
		{"hide-flag", "default", "/home/alice/src", func(o *Options) { o.Hide = append(o.Hide, "/srv/data", "/home/alice/.netrc", "/does/not/exist") }},
		{"rw-replaces-tmp", "default", "/home/alice/src", func(o *Options) { o.RW = append(o.RW, PathMap{Src: "/tmp/build", Dst: "/tmp"}) }},
		{"policy-mounts", "default", "/home/alice/src", func(o *Options) {
			o.Mounts = append(o.Mounts, MountSpec{Type: "bind", Source: "/srv/data", Target: "/mnt/data", ReadOnly: true},
				MountSpec{Type: "bind", Source: "/nope", Target: "/mnt/nope", Optional: true},
				MountSpec{Type: "tmpfs", Target: "/mnt/scratch", Size: 64 << 20})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := fakeHost(tc.cwd)
			o := policyOptions(t, tc.policy, h)
			if tc.mod != nil {
				tc.mod(&o)
			}
			p, _, err := Resolve(o, h)
			if err != nil {
				t.Fatal(err)
			}
			got := "cwd " + p.Cwd + "\n" + mount.Render(p.Mounts)
			golden := filepath.Join("testdata", "plans", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if d := cmp.Diff(string(want), got); d != "" {
				t.Errorf("plan %s (-want +got):\n%s", tc.name, d)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no command", Options{}, "no command given"},
		{"missing ro source", Options{Argv: []string{"x"}, RO: []PathMap{{Src: "/nope", Dst: "/nope"}}}, "--ro /nope: no such file"},
		{"missing policy source", Options{Argv: []string{"x"}, RO: []PathMap{{Src: "/nope", Dst: "/nope", Origin: "policy ci.toml:3:7: filesystem.ro[0]"}}},
			"policy ci.toml:3:7: filesystem.ro[0] /nope: no such file"},
		{"relative target", Options{Argv: []string{"x"}, RW: []PathMap{{Src: "/srv/data", Dst: "data"}}}, "must be an absolute path"},
		{"limits with enforce off", Options{Argv: []string{"x"}, LimitsMode: "off", Limits: cgroup.Limits{Memory: 1 << 30}}, "limits.enforce"},
		{"unknown seccomp profile", Options{Argv: []string{"x"}, Seccomp: "bogus"}, "seccomp profile bogus"},
		{"relative tmpfs", Options{Argv: []string{"x"}, Tmpfs: []string{"scratch"}}, "--tmpfs scratch"},
		{"replace root", Options{Argv: []string{"x"}, Tmpfs: []string{"/"}}, "cannot replace the jail's root"},
		{"bad env", Options{Argv: []string{"x"}, Env: []string{"NOEQUALS"}}, "want KEY=VALUE"},
		{"bad net", Options{Argv: []string{"x"}, Net: "bridge"}, "--net bridge"},
		{"relative chdir", Options{Argv: []string{"x"}, Chdir: "src"}, "--chdir src"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Resolve(tc.o, fakeHost("/home/alice/src"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Resolve: %v, want an error containing %q", err, tc.want)
			}
			if _, ok := err.(*UsageError); !ok {
				t.Errorf("error type %T, want *UsageError", err)
			}
		})
	}
}

func TestResolveEnv(t *testing.T) {
	p, _, err := Resolve(Options{Argv: []string{"x"}, Env: []string{"TZ=UTC"}, EnvPass: []string{"CI*"}}, fakeHost("/home/alice/src"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"CI=true", "CI_JOB=7", "HOME=/home/alice", "LANG=C.UTF-8", "LC_ALL=C", "PATH=/usr/bin:/bin", "TERM=xterm", "TZ=UTC"}
	if d := cmp.Diff(want, p.Env); d != "" {
		t.Errorf("env (-want +got):\n%s", d)
	}
	for _, kv := range p.Env {
		for _, secret := range []string{"AWS_SECRET", "GITHUB_TOKEN", "SSH_AUTH_SOCK"} {
			if strings.HasPrefix(kv, secret) {
				t.Errorf("secret %s reached the payload's environment", kv)
			}
		}
	}
}

func TestResolveMaps(t *testing.T) {
	h := fakeHost("/home/alice/src")
	for _, tc := range []struct {
		name     string
		o        Options
		helpers  bool
		wantMode string
		wantUID  []userns.IDMap
		wantErr  string
	}{
		// No mode from a policy or a flag: policies.DefaultMap, the one place the default lives.
		{"default", Options{}, true, "single", []userns.IDMap{{Inside: 1000, Host: 1000, Count: 1}}, ""},
		{"auto with ranges", Options{Map: userns.ModeAuto}, true, "subuid", []userns.IDMap{{Inside: 0, Host: 100000, Count: 1000}, {Inside: 1000, Host: 1000, Count: 1}, {Inside: 1001, Host: 101000, Count: 64536}}, ""},
		{"auto without helpers", Options{Map: userns.ModeAuto}, false, "single", []userns.IDMap{{Inside: 1000, Host: 1000, Count: 1}}, ""},
		{"single as root", Options{Map: userns.ModeSingle, AsRoot: true}, true, "single", []userns.IDMap{{Inside: 0, Host: 1000, Count: 1}}, ""},
		{"subuid required", Options{Map: userns.ModeSubuid}, false, "", nil, "--map=subuid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.HaveHelpers = tc.helpers
			tc.o.Argv = []string{"x"}
			p, _, err := Resolve(tc.o, h)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.MapMode != tc.wantMode {
				t.Errorf("MapMode = %s, want %s", p.MapMode, tc.wantMode)
			}
			if d := cmp.Diff(tc.wantUID, p.Maps.UID); d != "" {
				t.Errorf("uid map (-want +got):\n%s", d)
			}
		})
	}
}

// TestPrograms: the plan compiles to an init program that dies with warden,
// resets every signal and waits for "go" before it touches anything, and
// to a payload program that sets rlimits and drops capabilities before it
// loads seccomp, and loads seccomp right before execve.
func TestPrograms(t *testing.T) {
	h := fakeHost("/home/alice/src")
	p, _, err := Resolve(Options{Argv: []string{"make", "-j2"}, Rlimits: []Rlimit{{Name: "nofile", Resource: 7, Soft: 64, Hard: 64}}}, h)
	if err != nil {
		t.Fatal(err)
	}
	p.Seccomp = []byte{0x06, 0, 0, 0, 0, 0, 0xff, 0x7f} // RET ALLOW
	p.SeccompName = "test"
	init, payload, err := Programs(p, 9)
	if err != nil {
		t.Fatal(err)
	}
	first := func(prog string, name string) int {
		for i, line := range strings.Split(prog, "\n") {
			if strings.Contains(line, name) {
				return i
			}
		}
		return -1
	}
	ip := init.String()
	if first(ip, "PR_SET_PDEATHSIG") != 0 || first(ip, "rt_sigaction") != 1 {
		t.Errorf("init does not start with PR_SET_PDEATHSIG and the signal reset:\n%s", ip)
	}
	if g, m := first(ip, "read(sync, <go>"), first(ip, "mount("); g < 0 || m < g {
		t.Errorf("init mounts before it has \"go\" (read at %d, mount at %d):\n%s", g, m, ip)
	}
	if first(ip, "PR_SET_DUMPABLE") != len(init.Steps)-1 {
		t.Errorf("PR_SET_DUMPABLE is not init's last step:\n%s", ip)
	}
	pp := payload.String()
	rl, caps, nnp, sc, ex := first(pp, "prlimit64"), first(pp, "capset"), first(pp, "PR_SET_NO_NEW_PRIVS"), first(pp, "seccomp("), first(pp, "execve(")
	if !(rl >= 0 && rl < caps && caps < nnp && nnp < sc && sc == ex-1 && ex == len(payload.Steps)-1) {
		t.Errorf("payload order: prlimit64 %d, capset %d, no_new_privs %d, seccomp %d, execve %d:\n%s", rl, caps, nnp, sc, ex, pp)
	}
	if !strings.Contains(pp, `"/usr/bin/make"`) || !strings.Contains(pp, `["make" "-j2"]`) {
		t.Errorf("execve candidates or argv:\n%s", pp)
	}
}

// TestSeccompCacheNotWritable: the compiled-filter cache is used only where
// the jail cannot write it; when a read-write bind shows it (or a parent),
// the filter is compiled afresh and the cache is neither read nor written.
func TestSeccompCacheNotWritable(t *testing.T) {
	for _, tc := range []struct {
		name      string
		bindCache bool
		wantFile  bool
	}{
		{"cache hidden from the jail", false, true},
		{"cache under a read-write bind", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			cache := filepath.Join(tmp, "cache", "seccomp")
			h := fakeHost("/home/alice/src")
			stat, eval := h.Stat, h.EvalSymlinks
			h.Stat = func(p string) (fs.FileInfo, error) {
				if strings.HasPrefix(p, tmp) {
					return os.Stat(p)
				}
				return stat(p)
			}
			h.EvalSymlinks = func(p string) (string, error) {
				if strings.HasPrefix(p, tmp) {
					return filepath.EvalSymlinks(p)
				}
				return eval(p)
			}
			o := policyOptions(t, "default", h)
			o.SeccompCache = cache
			if tc.bindCache {
				o.RW = append(o.RW, PathMap{Src: tmp, Dst: "/data"})
			}
			p, _, err := Resolve(o, h)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Seccomp) == 0 {
				t.Fatal("no filter compiled")
			}
			ents, _ := os.ReadDir(cache)
			if got := len(ents) > 0; got != tc.wantFile {
				t.Errorf("cache written = %v, want %v", got, tc.wantFile)
			}
		})
	}
}

// TestHomeWritableWarning: started in $HOME (or a parent of it), the
// default policy shows the directory read-only and says so; a project under
// $HOME stays writable; an explicit --rw ~ makes it writable, with a loud
// warning.
func TestHomeWritableWarning(t *testing.T) {
	for _, tc := range []struct {
		cwd          string
		rwFlag       bool
		wantRO       bool
		wantWritable bool
	}{
		{"/home/alice/src", false, false, false},
		{"/home/alice", false, true, false},
		{"/home/alice", true, false, true},
	} {
		h := fakeHost(tc.cwd)
		o := policyOptions(t, "default", h)
		if tc.rwFlag {
			o.RW = append(o.RW, PathMap{Src: "/home/alice", Dst: "/home/alice", Origin: "--rw"})
		}
		p, warns, err := Resolve(o, h)
		if err != nil {
			t.Fatal(err)
		}
		gotRO, gotWritable := false, false
		for _, w := range warns {
			if w.Loud && strings.Contains(w.What, "is shown read-only") && strings.Contains(w.Reason, "--rw ") {
				gotRO = true
			}
			if w.Loud && strings.Contains(w.What, "$HOME is writable") {
				gotWritable = true
			}
		}
		if gotRO != tc.wantRO || gotWritable != tc.wantWritable {
			t.Errorf("cwd %s (--rw ~ %v): read-only warning %v, writable warning %v; want %v, %v (%v)", tc.cwd, tc.rwFlag, gotRO, gotWritable, tc.wantRO, tc.wantWritable, warns)
		}
		for _, op := range p.Mounts {
			if op.Kind == mount.Bind && op.Source == tc.cwd && op.ReadOnly != tc.wantRO {
				t.Errorf("cwd %s (--rw ~ %v): %s", tc.cwd, tc.rwFlag, op)
			}
		}
	}
}

// withHosts gives h a regular file /etc/hosts holding content.
func withHosts(h *Host, content string) *Host {
	lstat := h.Lstat
	h.Lstat = func(p string) (fs.FileInfo, error) {
		if p == "/etc/hosts" {
			return fakeInfo{"hosts", 0o644}, nil
		}
		return lstat(p)
	}
	h.ReadFile = func(p string) ([]byte, error) {
		if p != "/etc/hosts" {
			return nil, fs.ErrNotExist
		}
		return []byte(content), nil
	}
	return h
}

// TestHostsFile: the jail's /etc/hosts is the host's plus a line for the
// jail's host name, only where the plan shows the host's /etc, puts
// nothing of its own at /etc/hosts, and the name does not resolve already.
func TestHostsFile(t *testing.T) {
	etc := []mount.Op{{Kind: mount.Bind, Source: "/etc", Target: "/etc", ReadOnly: true}}
	with := func(ops ...mount.Op) []mount.Op { return append(append([]mount.Op{}, etc...), ops...) }
	std := "127.0.0.1\tlocalhost\n127.0.1.1\tvm # the host\n::1 localhost ip6-localhost\n"
	added := func(name string) string { return "# added by warden: the jail's host name\n127.0.1.1\t" + name + "\n" }
	for _, tc := range []struct {
		name, content, hostname string
		ops                     []mount.Op
		want                    string // "" for no op
	}{
		{"adds the name", std, "warden", etc, std + added("warden")},
		{"no trailing newline", "127.0.0.1 localhost", "ci", etc, "127.0.0.1 localhost\n" + added("ci")},
		{"resolves already", std, "vm", etc, ""},
		{"a comment does not count", std, "host", etc, std + added("host")},
		{"no /etc in the plan", std, "warden", nil, ""},
		{"the policy's own file", std, "warden", with(mount.Op{Kind: mount.Bind, Source: "/srv/hosts", Target: "/etc/hosts", File: true}), ""},
		{"hidden", std, "warden", with(mount.Op{Kind: mount.Hide, Target: "/etc/hosts", File: true}), ""},
		{"too large", strings.Repeat("# padding\n", maxHosts/10+1), "warden", etc, ""},
	} {
		h := withHosts(fakeHost("/home/alice/src"), tc.content)
		op, ok := hostsFile(tc.ops, h, tc.hostname)
		if got := op.Data; ok != (tc.want != "") || got != tc.want {
			t.Errorf("%s: hostsFile = %v %q, want %q", tc.name, ok, got, tc.want)
		}
		if ok && (op.Kind != mount.File || op.Target != "/etc/hosts") {
			t.Errorf("%s: op %v, want a file at /etc/hosts", tc.name, op)
		}
	}
	// Through Resolve: the default policy shows /etc, so the plan ends
	// with the file, after the bind of /etc it covers.
	h := withHosts(fakeHost("/home/alice/src"), std)
	p, _, err := Resolve(policyOptions(t, "default", h), h)
	if err != nil {
		t.Fatal(err)
	}
	etcAt, hostsAt := -1, -1
	for i, o := range p.Mounts {
		if o.Target == "/etc" && o.Kind == mount.Bind {
			etcAt = i
		}
		if o.Target == "/etc/hosts" && o.Kind == mount.File {
			hostsAt = i
		}
	}
	if etcAt < 0 || hostsAt < etcAt {
		t.Errorf("default plan: /etc bind at %d, /etc/hosts file at %d; want the file after the bind", etcAt, hostsAt)
	}
}

// TestSharedDirsNotShown: a directory that holds other programs' sockets
// (a sticky world-writable one such as /tmp, or the session's runtime dir
// and its parents) is not bound when it is merely the current directory;
// asked for by flag it is bound, and both are said loudly.
func TestSharedDirsNotShown(t *testing.T) {
	host := func(cwd string) *Host {
		h := fakeHost(cwd)
		h.Environ = append(h.Environ, "XDG_RUNTIME_DIR=/run/user/1000")
		stat := h.Stat
		shared := map[string]fs.FileMode{"/tmp": fs.ModeDir | fs.ModeSticky | 0o777, "/run": fs.ModeDir | 0o755,
			"/run/user": fs.ModeDir | 0o755, "/run/user/1000": fs.ModeDir | 0o700, "/srv/drop": fs.ModeDir | 0o777}
		h.Stat = func(p string) (fs.FileInfo, error) {
			if m, ok := shared[p]; ok {
				return fakeInfo{path.Base(p), m}, nil
			}
			return stat(p)
		}
		h.Lstat = h.Stat
		h.EvalSymlinks = func(p string) (string, error) {
			if _, err := h.Stat(p); err != nil {
				return "", err
			}
			return p, nil
		}
		return h
	}
	bound := func(p *Plan, dir string) bool {
		for _, o := range p.Mounts {
			if o.Kind == mount.Bind && o.Source == dir {
				return true
			}
		}
		return false
	}
	loud := func(ws []Warning, what string) bool {
		for _, w := range ws {
			if w.Loud && strings.Contains(w.What, what) {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		cwd, flagRW string
		wantBound   bool
		wantWarning string
	}{
		{"/tmp", "", false, "the current directory /tmp is not shown"},
		{"/run/user/1000", "", false, "the current directory /run/user/1000 is not shown"},
		{"/run", "", false, "the current directory /run is not shown"},
		{"/tmp/build", "", true, ""},
		{"/srv/drop", "", true, ""}, // world-writable but not sticky: an ordinary directory
		{"/tmp", "/tmp", true, "/tmp is shown in the jail"},
		{"/tmp/build", "/tmp", true, "/tmp is shown in the jail"},
	} {
		h := host(tc.cwd)
		o := policyOptions(t, "default", h)
		dir := tc.cwd
		if tc.flagRW != "" {
			o.RW = append(o.RW, PathMap{Src: tc.flagRW, Dst: tc.flagRW, Origin: "--rw"})
			dir = tc.flagRW
		}
		p, warns, err := Resolve(o, h)
		if err != nil {
			t.Fatalf("cwd %s: %v", tc.cwd, err)
		}
		if got := bound(p, dir); got != tc.wantBound {
			t.Errorf("cwd %s, --rw %q: %s bound = %v, want %v", tc.cwd, tc.flagRW, dir, got, tc.wantBound)
		}
		if tc.wantWarning != "" && !loud(warns, tc.wantWarning) {
			t.Errorf("cwd %s, --rw %q: no loud warning %q in %v", tc.cwd, tc.flagRW, tc.wantWarning, warns)
		}
		if tc.wantWarning == "" && (loud(warns, "is not shown") || loud(warns, "is shown in the jail")) {
			t.Errorf("cwd %s: unexpected warning %v", tc.cwd, warns)
		}
	}
}

// TestDaemonSocketsHidden: where the host has the socket directory of a
// root-equivalent daemon under /var (LXD, Incus, microk8s), the view that
// shows /var hides it: a read-only bind does not stop connect(2).
func TestDaemonSocketsHidden(t *testing.T) {
	h := fakeHost("/home/alice/src")
	stat := h.Stat
	h.Stat = func(p string) (fs.FileInfo, error) {
		if p == "/var/lib/incus" {
			return fakeInfo{"incus", fs.ModeDir | 0o711}, nil
		}
		return stat(p)
	}
	p, _, err := Resolve(policyOptions(t, "default", h), h)
	if err != nil {
		t.Fatal(err)
	}
	var hidden []string
	for _, o := range p.Mounts {
		if o.Kind == mount.Hide && strings.HasPrefix(o.Target, "/var/") {
			hidden = append(hidden, o.Target)
		}
	}
	if !slices.Equal(hidden, []string{"/var/lib/incus"}) {
		t.Errorf("hidden under /var: %v, want [/var/lib/incus] (only what exists)", hidden)
	}
}

// TestTmpfsSizes: every tmpfs of the jail is capped, at 1 GiB by default,
// at --tmpfs-size, and never above the memory limit (issue 15 item 5).
func TestTmpfsSizes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int64
		memory int64
		want   string
	}{
		{"default", 0, 0, "size=1g"},
		{"asked", 64 << 20, 0, "size=64m"},
		{"memory limit caps it", 2 << 30, 256 << 20, "size=256m"},
	} {
		h := fakeHost("/home/alice/src")
		o := policyOptions(t, "default", h)
		o.TmpfsSize, o.Limits.Memory = tc.size, tc.memory
		o.Tmpfs = append(o.Tmpfs, "/scratch")
		if tc.memory > 0 {
			o.LimitsMode = "best-effort"
		}
		p, _, err := Resolve(o, h)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, op := range p.Mounts {
			if op.Kind != mount.Tmpfs {
				continue
			}
			n++
			if !strings.Contains(op.Data, tc.want) {
				t.Errorf("%s: %s, want %s", tc.name, op, tc.want)
			}
		}
		if n < 6 { // /dev, /dev/shm, /tmp, /var/tmp, /run, $HOME, /scratch
			t.Errorf("%s: only %d tmpfs mounts", tc.name, n)
		}
	}
}

// TestVarNarrowed: of /var the default view binds only lib and cache, so
// daemons' sockets elsewhere under /var (spool, run-time state) are out of
// reach; --ro /var brings it all back (issue 15 item 6).
func TestVarNarrowed(t *testing.T) {
	h := fakeHost("/home/alice/src")
	for _, tc := range []struct {
		ro   []PathMap
		want []string
	}{
		{nil, []string{"/var/lib", "/var/cache"}},
		{[]PathMap{{Src: "/var", Dst: "/var", Origin: "--ro"}}, []string{"/var/lib", "/var/cache", "/var"}},
	} {
		o := policyOptions(t, "default", h)
		o.RO = append(o.RO, tc.ro...)
		p, _, err := Resolve(o, h)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, op := range p.Mounts {
			if op.Kind == mount.Bind && strings.HasPrefix(op.Source+"/", "/var/") {
				got = append(got, op.Source)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("binds under /var with %v: %v, want %v", tc.ro, got, tc.want)
		}
	}
}

// TestSlirpMap: --net slirp4netns needs uid 0 mapped; with the default map
// and a subuid range the range is used (said at info level), an explicit
// --map=single is refused with the fix, and so is a caller without a range
// (issue 15 item 14).
func TestSlirpMap(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mode     userns.Mode
		helpers  bool
		wantMode string
		wantErr  string
	}{
		{"default map, subuid range", "", true, "subuid", ""},
		{"explicit single", userns.ModeSingle, true, "", "--net slirp4netns needs uid 0 mapped"},
		{"no range", "", false, "", "--net slirp4netns needs uid 0 mapped"},
	} {
		h := fakeHost("/home/alice/src")
		h.HaveHelpers = tc.helpers
		p, warns, err := Resolve(Options{Argv: []string{"x"}, Net: "slirp4netns", Map: tc.mode}, h)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || p.MapMode != tc.wantMode || !p.Maps.Ranges {
			t.Errorf("%s: %v, map %s ranges %v; want %s", tc.name, err, p.MapMode, p.Maps.Ranges, tc.wantMode)
			continue
		}
		said := false
		for _, w := range warns {
			said = said || (!w.Loud && strings.Contains(w.What, "subuid range"))
		}
		if !said {
			t.Errorf("%s: the switch to the subuid range is not said: %v", tc.name, warns)
		}
	}
}
