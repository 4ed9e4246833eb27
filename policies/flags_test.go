package policies

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestApply(t *testing.T) {
	env := testEnv(memFS{"/p/off.toml": "extends = \"default\"\n[limits]\nenforce = \"off\"\n"})
	base, err := Load("default", env)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags []Flag
		check func(p *Policy) any
		want  any
	}{
		{"list appends", []Flag{{"--ro", "filesystem.ro", "/data"}, {"--ro", "filesystem.ro", "rel/dir"}},
			func(p *Policy) any { return p.Filesystem.RO }, []string{"/data", "/home/u/src/proj/sub/rel/dir"}},
		{"scalar overrides", []Flag{{"--net", "network.mode", "pasta"}, {"-p", "network.publish", "8080:80"}},
			func(p *Policy) any { return []any{p.Network.Mode, p.Network.Publish} }, []any{"pasta", []string{"8080:80"}}},
		{"limit turns enforce on", []Flag{{"--memory", "limits.memory", "2G"}, {"--cpus", "limits.cpus", "1.5"}, {"--pids", "limits.pids", "64"}},
			func(p *Policy) any { return p.Limits }, Limits{Enforce: "required", Memory: 2 << 30, CPUs: 1.5, Pids: 64}},
		{"env and env-pass", []Flag{{"--env", "process.env", "TZ=UTC"}, {"--env", "process.env", "A=b=c"}, {"--env-pass", "process.env_pass", "GO*"}},
			func(p *Policy) any { return []any{p.Process.Env, p.Process.EnvPass[len(p.Process.EnvPass)-1]} },
			[]any{map[string]string{"TZ": "UTC", "A": "b=c"}, "GO*"}},
		{"a relative --report is taken from the working directory", []Flag{{"--report", "report.file", "run.json"}},
			func(p *Policy) any { return p.Report.File }, "/home/u/src/proj/sub/run.json"},
		{"a relative --seccomp profile is taken from the working directory", []Flag{{"--seccomp", "seccomp.profile", "./prof.json"}},
			func(p *Policy) any { return p.Seccomp.Profile }, "/home/u/src/proj/sub/prof.json"},
		{"--seccomp NAME stays a name", []Flag{{"--seccomp", "seccomp.profile", "strict"}},
			func(p *Policy) any { return p.Seccomp.Profile }, "strict"},
		{"--report fd:N stays", []Flag{{"--report", "report.file", "fd:3"}},
			func(p *Policy) any { return p.Report.File }, "fd:3"},
		{"values are literal", []Flag{{"--hostname", "process.hostname", "box"}, {"--report", "report.file", "/r/$x.json"}},
			func(p *Policy) any { return []string{p.Process.Hostname, p.Report.File} }, []string{"box", "/r/$x.json"}},
		{"duration, bool, rlimit", []Flag{{"--timeout", "process.timeout", "90s"}, {"--io-uring", "seccomp.io_uring", "true"}, {"--rlimit", "process.rlimits", "nofile=10:20"}},
			func(p *Policy) any { return []any{p.Process.Timeout, p.Seccomp.IOUring, p.Process.Rlimits} },
			[]any{90 * time.Second, true, map[string]Rlimit{"nofile": {10, 20}}}},
		{"replace then add", []Flag{{"--no-cwd", "replace", "filesystem.rw"}, {"--rw", "filesystem.rw", "/out"}},
			func(p *Policy) any { return p.Filesystem.RW }, []string{"/out"}},
		{"origin names the flag", []Flag{{"--memory", "limits.memory", "1G"}, {"--ro", "filesystem.ro", "/data"}},
			func(p *Policy) any {
				return []string{p.Origin["limits.memory"], p.Origin["filesystem.ro[0]"], p.Origin["filesystem.rw[0]"]}
			}, []string{"--memory", "--ro", "builtin:default:24:7"}},
		{"chain and description kept", nil,
			func(p *Policy) any { return []any{p.Chain, p.Description, p.Name} },
			[]any{[]string{"command line", "builtin:default"}, base.Description, "default"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Apply(base, env, tc.flags)
			if err != nil {
				t.Fatalf("Apply() = %v", err)
			}
			if diff := cmp.Diff(tc.want, tc.check(p)); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			assertRoundTrip(t, p, env)
		})
	}
	off, err := Load("/p/off.toml", env)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		p     *Policy
		flags []Flag
		want  PosError
	}{
		{"bad size", base, []Flag{{"--memory", "limits.memory", "2GB"}},
			PosError{File: "command line", Key: "--memory", Msg: `"2GB" is not a size`}},
		{"bad env", base, []Flag{{"--env", "process.env", "TZ"}}, PosError{File: "command line", Key: "--env", Msg: `"TZ" is not NAME=VALUE`}},
		{"bad bool", base, []Flag{{"--audit", "seccomp.audit", "yes please"}}, PosError{File: "command line", Key: "--audit", Msg: `"yes please" is not a boolean`}},
		{"contradiction with file", base, []Flag{{"--ro", "filesystem.ro", "/home/u/.ssh"}},
			PosError{File: "command line", Key: "--ro", Msg: `"/home/u/.ssh" is also in filesystem.hide (builtin:default:26:3)`}},
		{"limit with enforce off in file", off, []Flag{{"--pids", "limits.pids", "10"}},
			PosError{File: "command line", Key: "--pids", Msg: `is set, but limits.enforce is "off" (/p/off.toml:3:11)`}},
		{"mount has no flag form", base, []Flag{{"--mount", "filesystem.mount", "x"}},
			PosError{File: "command line", Key: "--mount", Msg: "has no flag form"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Apply(tc.p, env, tc.flags)
			var pe *PosError
			if !errors.As(err, &pe) {
				t.Fatalf("Apply() = %v; want a *PosError", err)
			}
			got := *pe
			got.Hint = ""
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Apply() error %q mismatch (-want +got):\n%s", pe, diff)
			}
		})
	}
}
