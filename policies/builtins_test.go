package policies

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBuiltinsList(t *testing.T) {
	got := Builtins()
	want := []string{"build", "ci", "default", "net", "strict"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Builtins() mismatch (-want +got):\n%s", diff)
	}
	if _, ok := BuiltinSource("nope"); ok {
		t.Errorf("BuiltinSource(nope) = ok; want not found")
	}
	if _, ok := BuiltinSource("../policy.go"); ok {
		t.Errorf("BuiltinSource(../policy.go) = ok; want refused")
	}
}

// TestBuiltins loads every built-in and checks that it means what the docs
// say it means, and that it survives Format → Parse.
func TestBuiltins(t *testing.T) {
	env := testEnv(nil)
	for _, tc := range []struct {
		name  string
		check func(t *testing.T, p *Policy)
	}{
		{"default", func(t *testing.T, p *Policy) {
			want := []any{"self", "single", []string{env.Project}, []string(nil), "none", "default", "off", env.CWD}
			got := []any{p.Identity.User, p.Identity.Map, p.Filesystem.RW, p.Filesystem.RO, p.Network.Mode, p.Seccomp.Profile, p.Limits.Enforce, p.Filesystem.Chdir}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("default (-want +got):\n%s", diff)
			}
			if !slices.Contains(p.Filesystem.Hide, "/home/u/.ssh") || !slices.Contains(p.Filesystem.Hide, "/home/u/.git-credentials") {
				t.Errorf("default hide = %v; want it to contain /home/u/.ssh and .git-credentials", p.Filesystem.Hide)
			}
			// git's configuration, read-only and only where it exists.
			var git []string
			for _, m := range p.Filesystem.Mounts {
				if m.Type == "bind" && m.ReadOnly && m.Optional && m.Source == m.Target {
					git = append(git, m.Source)
				}
			}
			if !slices.Equal(git, []string{"/home/u/.gitconfig", "/home/u/.config/git"}) {
				t.Errorf("default read-only git configuration mounts: %v", git)
			}
			if p.Report.File != "" || p.Process.Timeout != 0 {
				t.Errorf("default report %q timeout %v; want none", p.Report.File, p.Process.Timeout)
			}
		}},
		{"strict", func(t *testing.T, p *Policy) {
			if len(p.Filesystem.RW) != 0 || !slices.Contains(p.Filesystem.RO, env.CWD) || p.Seccomp.Profile != "strict" {
				t.Errorf("strict rw %v ro %v profile %q; want no rw, cwd ro, profile strict", p.Filesystem.RW, p.Filesystem.RO, p.Seccomp.Profile)
			}
		}},
		{"build", func(t *testing.T, p *Policy) {
			want := []any{[]string{env.Project}, []string{env.Home}, "none"}
			got := []any{p.Filesystem.RW, p.Filesystem.Hide, p.Network.Mode}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("build (-want +got):\n%s", diff)
			}
		}},
		{"ci", func(t *testing.T, p *Policy) {
			want := Limits{Enforce: "required", Memory: 4 << 30, Pids: 1024}
			if diff := cmp.Diff(want, p.Limits); diff != "" {
				t.Errorf("ci limits (-want +got):\n%s", diff)
			}
			if p.Report.File != env.Project+"/warden-report.json" || !slices.Equal(p.Filesystem.RW, []string{env.Project}) {
				t.Errorf("ci report %q rw %v", p.Report.File, p.Filesystem.RW)
			}
		}},
		{"net", func(t *testing.T, p *Policy) {
			if p.Network.Mode != "auto" || p.Network.AllowHostLoopback || !slices.Equal(p.Filesystem.RW, []string{env.Project}) {
				t.Errorf("net mode %q loopback %v rw %v", p.Network.Mode, p.Network.AllowHostLoopback, p.Filesystem.RW)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Load(tc.name, env)
			if err != nil {
				t.Fatalf("Load(%q) = %v", tc.name, err)
			}
			if p.Source != "builtin:"+tc.name || p.Name != tc.name || p.Description == "" {
				t.Errorf("Load(%q): source %q name %q description %q", tc.name, p.Source, p.Name, p.Description)
			}
			tc.check(t, p)
			assertRoundTrip(t, p, env)
		})
	}
}

// TestBuiltinsEveryCWD loads every built-in from directories that are
// special to some of them: $HOME, the project root, "/" and a system dir.
func TestBuiltinsEveryCWD(t *testing.T) {
	for _, cwd := range []string{"/home/u/src/proj", "/", "/usr/src", "/home/u/src"} {
		env := testEnv(nil)
		env.CWD, env.Project = cwd, cwd
		for _, n := range Builtins() {
			t.Run(cwd+"/"+n, func(t *testing.T) {
				if _, err := Load(n, env); err != nil {
					t.Errorf("Load(%q) from %s = %v", n, cwd, err)
				}
			})
		}
	}
}

func assertRoundTrip(t *testing.T, p *Policy, env Env) {
	t.Helper()
	text := Format(p)
	q, err := Parse("/formatted/"+p.Name+".toml", text, env)
	if err != nil {
		t.Fatalf("Parse(Format(p)) = %v\n%s", err, text)
	}
	if q.Hash != p.Hash {
		t.Errorf("Parse(Format(p)).Hash = %s; want %s", q.Hash, p.Hash)
	}
	if diff := cmp.Diff(p, q, policyCmp); diff != "" {
		t.Errorf("Parse(Format(p)) mismatch (-want +got):\n%s", diff)
	}
}

// TestBuiltinsFromHome: started in $HOME, every built-in either loads or
// says, in one line, that it cannot start from here and what to do; none
// reports itself as a broken policy the user would have to edit
// (issue 15 item 3).
func TestBuiltinsFromHome(t *testing.T) {
	env := testEnv(nil)
	env.CWD, env.Project = env.Home, env.Home
	for _, name := range []string{"default", "strict", "build", "ci", "net"} {
		_, err := Load(name, env)
		if err == nil {
			continue
		}
		var pe *PosError
		if !errors.As(err, &pe) || !pe.Here || !strings.Contains(err.Error(), "run it from a project directory") ||
			strings.Contains(err.Error(), "replace = [") {
			t.Errorf("%s from $HOME: %v", name, err)
		}
	}
	if _, err := Load("build", env); err == nil {
		t.Error("build from $HOME loaded: it hides $HOME and shows the project ($HOME) read-write")
	}
}
