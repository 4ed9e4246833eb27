package policies

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestMerge checks the merge rule: scalars override, lists append (without
// duplicates), tables merge per entry, replace drops the inherited value,
// description is not inherited.
func TestMerge(t *testing.T) {
	base := `description = "base"
[filesystem]
ro = ["/a", "/b"]
tmpfs = ["/t"]
[process]
env = { A = "1", B = "2" }
rlimits = { nofile = 100 }
timeout = "10m"
env_pass = ["LANG"]
[network]
mode = "pasta"
publish = ["8080:80"]
`
	files := memFS{"/p/base.toml": base}
	for _, tc := range []struct {
		name  string
		leaf  string
		check func(p *Policy) any
		want  any
	}{
		{"scalar overrides", "extends = \"base.toml\"\n[process]\ntimeout = \"1m\"\n",
			func(p *Policy) any { return p.Process.Timeout }, time.Minute},
		{"scalar inherited", "extends = \"base.toml\"\n",
			func(p *Policy) any { return p.Network.Mode }, "pasta"},
		{"list appends without duplicates", "extends = \"base.toml\"\n[filesystem]\nro = [\"/b\", \"/c\"]\n",
			func(p *Policy) any { return p.Filesystem.RO }, []string{"/a", "/b", "/c"}},
		{"replace drops inherited list", "extends = \"base.toml\"\nreplace = [\"filesystem.ro\"]\n[filesystem]\nro = [\"/c\"]\n",
			func(p *Policy) any { return [][]string{p.Filesystem.RO, p.Filesystem.Tmpfs} }, [][]string{{"/c"}, {"/t"}}},
		{"replace with nothing empties", "extends = \"base.toml\"\nreplace = [\"network.publish\"]\n[network]\nmode = \"none\"\n",
			func(p *Policy) any { return p.Network.Publish }, []string(nil)},
		{"table merges per entry", "extends = \"base.toml\"\n[process.env]\nB = \"20\"\nC = \"3\"\n",
			func(p *Policy) any { return p.Process.Env }, map[string]string{"A": "1", "B": "20", "C": "3"}},
		{"replace drops inherited table", "extends = \"base.toml\"\nreplace = [\"process.env\", \"process.rlimits\"]\n[process]\nenv = { C = \"3\" }\n",
			func(p *Policy) any { return []any{p.Process.Env, p.Process.Rlimits} }, []any{map[string]string{"C": "3"}, map[string]Rlimit(nil)}},
		{"description not inherited", "extends = \"base.toml\"\n",
			func(p *Policy) any { return p.Description }, ""},
		{"chain leaf first", "extends = \"base.toml\"\n",
			func(p *Policy) any { return p.Chain }, []string{"/p/leaf.toml", "/p/base.toml"}},
		{"origin names the layer", "extends = \"base.toml\"\n[filesystem]\nro = [\"/c\"]\n",
			func(p *Policy) any {
				return []string{p.Origin["filesystem.ro[0]"], p.Origin["filesystem.ro[2]"], p.Origin["process.env.A"]}
			}, []string{"/p/base.toml:3:7", "/p/leaf.toml:3:7", "/p/base.toml:6:13"}},
		{"enforce follows limits", "[limits]\nmemory = \"1G\"\n",
			func(p *Policy) any { return p.Limits.Enforce }, "required"},
		{"enforce off without limits", "[limits]\nmemory = 0\n",
			func(p *Policy) any { return p.Limits.Enforce }, "off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("/p/leaf.toml", []byte(tc.leaf), testEnv(files))
			if err != nil {
				t.Fatalf("Parse() = %v", err)
			}
			if diff := cmp.Diff(tc.want, tc.check(p)); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			assertRoundTrip(t, p, testEnv(files))
		})
	}
}

// TestLookup checks where names and paths are found.
func TestLookup(t *testing.T) {
	files := memFS{
		"/home/u/.config/warden/policies/web.toml":     "description = \"user web\"\n",
		"/etc/warden/policies/web.toml":                "description = \"system web\"\n",
		"/etc/warden/policies/team.toml":               "description = \"system team\"\n",
		"/home/u/.config/warden/policies/default.toml": "extends = \"default\"\ndescription = \"my default\"\n[network]\nmode = \"host\"\n",
		"/home/u/src/proj/sub/local.toml":              "description = \"in cwd\"\n",
		"/home/u/src/proj/sub/dir/x.toml":              "extends = \"../local.toml\"\n",
	}
	for _, tc := range []struct {
		ref                string
		wantSource, wantDe string
		wantChain          []string
	}{
		{"web", "/home/u/.config/warden/policies/web.toml", "user web", nil},
		{"team", "/etc/warden/policies/team.toml", "system team", nil},
		{"ci", "builtin:ci", "CI job: project read-write, limits required, report on", nil},
		{"", "/home/u/.config/warden/policies/default.toml", "my default",
			[]string{"/home/u/.config/warden/policies/default.toml", "builtin:default"}},
		{"local.toml", "/home/u/src/proj/sub/local.toml", "in cwd", nil},
		{"./local.toml", "/home/u/src/proj/sub/local.toml", "in cwd", nil},
		{"/etc/warden/policies/web.toml", "/etc/warden/policies/web.toml", "system web", nil},
		{"dir/x.toml", "/home/u/src/proj/sub/dir/x.toml", "",
			[]string{"/home/u/src/proj/sub/dir/x.toml", "/home/u/src/proj/sub/local.toml"}},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			p, err := Load(tc.ref, testEnv(files))
			if err != nil {
				t.Fatalf("Load(%q) = %v", tc.ref, err)
			}
			if p.Source != tc.wantSource || p.Description != tc.wantDe {
				t.Errorf("Load(%q) = source %q description %q; want %q %q", tc.ref, p.Source, p.Description, tc.wantSource, tc.wantDe)
			}
			if tc.wantChain != nil {
				if diff := cmp.Diff(tc.wantChain, p.Chain); diff != "" {
					t.Errorf("Load(%q).Chain (-want +got):\n%s", tc.ref, diff)
				}
			}
		})
	}
	// A name is never looked up in the current directory, even when a file
	// of that name is there.
	t.Run("no implicit cwd", func(t *testing.T) {
		_, err := Load("local", testEnv(files))
		var pe *PosError
		if !errors.As(err, &pe) || pe.Msg != `policy "local" not found` {
			t.Fatalf("Load(local) = %v; want not found", err)
		}
		want := `searched /home/u/.config/warden/policies, /etc/warden/policies, the built-ins (build, ci, default, net, strict); for a file in this directory write "./local.toml"`
		if pe.Hint != want {
			t.Errorf("hint = %q; want %q", pe.Hint, want)
		}
	})
	t.Run("relative config dirs ignored", func(t *testing.T) {
		env := testEnv(memFS{"policies/web.toml": "description = \"relative\"\n"})
		env.ConfigDirs = []string{"policies"}
		if _, err := Load("web", env); err == nil {
			t.Errorf("Load(web) with ConfigDirs [policies] succeeded; want not found")
		}
	})
	t.Run("builtin extends no paths", func(t *testing.T) {
		_, err := Parse("builtin:x", []byte("extends = \"./y.toml\"\n"), testEnv(files))
		var pe *PosError
		if !errors.As(err, &pe) || pe.Hint != "a built-in policy extends only names" {
			t.Errorf("Parse(builtin:x) = %v; want a refusal", err)
		}
	})
	t.Run("self cycle", func(t *testing.T) {
		_, err := Parse("/p/me.toml", []byte("extends = \"/p/me.toml\"\n"), testEnv(memFS{"/p/me.toml": "extends = \"/p/me.toml\"\n"}))
		var pe *PosError
		if !errors.As(err, &pe) || pe.Msg != "extends cycle: /p/me.toml -> /p/me.toml" {
			t.Errorf("Parse(self cycle) = %v; want a cycle error", err)
		}
	})
	t.Run("chain too long", func(t *testing.T) {
		m := memFS{}
		for i := range 20 {
			m[pathN(i)] = "extends = \"" + pathN(i+1) + "\"\n"
		}
		m[pathN(20)] = ""
		_, err := Load(pathN(0), testEnv(m))
		var pe *PosError
		if !errors.As(err, &pe) || pe.Msg != "extends chain is longer than 16" || pe.File != pathN(15) {
			t.Errorf("Load(long chain) = %v; want a chain-length error in %s", err, pathN(15))
		}
	})
}

func pathN(i int) string { return "/c/" + string(rune('a'+i)) + ".toml" }

// TestVariables checks expansion, escapes and refusals.
func TestVariables(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"${CWD}", "/home/u/src/proj/sub"},
		{"${HOME}/${USER}", "/home/u/u"},
		{"/x/${UID}:${GID}", "/x/1000:1000"},
		{"${TMPDIR}/w", "/tmp/u/w"},
		{"${PROJECT}", "/home/u/src/proj"},
		{"${POLICY_DIR}/s.json", "/p/s.json"},
		{"${env:CI_DIR}/out", "/builds/x/out"},
		{"/cost/$$5", "/cost/$5"},
		{"/${env:DOLLAR}", "/a$b"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			src := "[report]\nfile = " + quote(tc.in) + "\n"
			p, err := Parse("/p/v.toml", []byte(src), testEnv(nil))
			if err != nil {
				t.Fatalf("Parse(%s) = %v", src, err)
			}
			if p.Report.File != tc.want {
				t.Errorf("file = %q; want %q", p.Report.File, tc.want)
			}
			assertRoundTrip(t, p, testEnv(nil))
		})
	}
	for _, tc := range []struct {
		name string
		env  func(*Env)
		in   string
		msg  string
	}{
		{"empty home", func(e *Env) { e.Home = "" }, "${HOME}/.ssh", "${HOME} is empty in this environment"},
		{"no getenv", func(e *Env) { e.Getenv = nil }, "${env:CI_DIR}", "${env:CI_DIR} cannot be read here"},
		{"empty env name", func(*Env) {}, "${env:}", `${env:}: "" is not a variable name`},
		{"unclosed", func(*Env) {}, "/a/${HOME", `"/a/${HOME" has an unclosed ${`},
		{"policy dir in builtin", func(*Env) {}, "${POLICY_DIR}", "${POLICY_DIR} has no meaning in a built-in policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv(nil)
			tc.env(&env)
			file := "/p/v.toml"
			if tc.name == "policy dir in builtin" {
				file = "builtin:v"
			}
			_, err := Parse(file, []byte("[filesystem]\nhide = ["+quote(tc.in)+"]\n"), env)
			var pe *PosError
			if !errors.As(err, &pe) || pe.Msg != tc.msg || pe.Line != 2 || pe.Col != 9 {
				t.Errorf("Parse(%q) = %v; want %q at 2:9", tc.in, err, tc.msg)
			}
		})
	}
	// ${env:NAME} is read only when a policy uses it.
	t.Run("getenv only on use", func(t *testing.T) {
		env := testEnv(nil)
		env.Getenv = func(k string) (string, bool) { t.Errorf("Getenv(%q) called", k); return "", false }
		if _, err := Load("default", env); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSizesAndDurations(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"512M", 512 << 20, true}, {"2G", 2 << 30, true}, {"1.5G", 3 << 29, true}, {"1048576", 1 << 20, true},
		{"4k", 4096, true}, {"1T", 1 << 40, true}, {"0", 0, true},
		{"2GB", 0, false}, {"2GiB", 0, false}, {"-1G", 0, false}, {"", 0, false}, {"G", 0, false},
		{"1e3", 0, false}, {"0x10", 0, false}, {"9999999P", 0, false}, {"9223372036854775807", 9223372036854775807, true},
	} {
		got, ok := parseSize(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseSize(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if ok {
			if back, _ := parseSize(formatSize(got)); back != got {
				t.Errorf("parseSize(formatSize(%d)) = %d", got, back)
			}
		}
	}
	for _, d := range []time.Duration{0, time.Hour, 90 * time.Second, 1500 * time.Millisecond, 7} {
		if back, err := time.ParseDuration(formatDuration(d)); err != nil || back != d {
			t.Errorf("ParseDuration(formatDuration(%v)) = %v, %v", d, back, err)
		}
	}
}
