package policies

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestErrorPositions has one case per class of error, each asserting the
// exact file, line, column and key, and part of the message.
func TestErrorPositions(t *testing.T) {
	files := memFS{
		"/p/cycle-a.toml": "extends = \"./cycle-b.toml\"\n",
		"/p/cycle-b.toml": "description = \"b\"\nextends = \"cycle-a.toml\"\n",
		"/p/broken.toml":  "[limits]\nmemory = \"lots\"\n",
	}
	type want struct {
		File      string
		Line, Col int
		Key, Msg  string
	}
	for _, tc := range []struct {
		name string
		src  string
		want want
	}{
		{"syntax", "[limits\nmemory = 1\n", want{"/p/t.toml", 1, 8, "", "expected ']'"}},
		{"duplicate key", "[network]\nmode = \"none\"\nmode = \"host\"\n", want{"/p/t.toml", 3, 1, "network.mode", "already"}},
		{"unknown top key", "descripton = \"x\"\n", want{"/p/t.toml", 1, 1, "descripton", "unknown key"}},
		{"unknown section key", "[limits]\n  memroy = \"2G\"\n", want{"/p/t.toml", 2, 3, "limits.memroy", "unknown key"}},
		{"unknown dotted key", "limits.pid = 3\n", want{"/p/t.toml", 1, 8, "limits.pid", "unknown key"}},
		{"section not a table", "network = \"none\"\n", want{"/p/t.toml", 1, 11, "network", "not a table"}},
		{"bad size", "[limits]\nenforce = \"required\"\nmemory = \"2GB\"\n", want{"/p/t.toml", 3, 10, "limits.memory", `"2GB" is not a size`}},
		{"bad duration", "[process]\ntimeout = \"30 minutes\"\n", want{"/p/t.toml", 2, 11, "process.timeout", "is not a duration"}},
		{"bad enum", "[network]\nmode = \"slirp\"\n", want{"/p/t.toml", 2, 8, "network.mode", "not one of the choices"}},
		{"wrong type", "[seccomp]\nio_uring = \"yes\"\n", want{"/p/t.toml", 2, 12, "seccomp.io_uring", "not a boolean"}},
		{"int out of range", "[limits]\ncpu_weight = 0\n", want{"/p/t.toml", 2, 14, "limits.cpu_weight", "not an integer in 1..10000"}},
		{"relative path", "[filesystem]\nrw = [\"/ok\", \"out\"]\n", want{"/p/t.toml", 2, 14, "filesystem.rw[1]", "not an absolute path"}},
		{"dotdot path", "[filesystem]\nro = [\n  \"/a/../b\",\n]\n", want{"/p/t.toml", 3, 3, "filesystem.ro[0]", `contains ".."`}},
		{"array not list", "[filesystem]\nro = \"/x\"\n", want{"/p/t.toml", 2, 6, "filesystem.ro", "not an array"}},
		{"unknown variable", "[filesystem]\nrw = [\"${FOO}/x\"]\n", want{"/p/t.toml", 2, 7, "filesystem.rw[0]", "unknown variable ${FOO}"}},
		{"lone dollar", "[process]\nhostname = \"a$b\"\n", want{"/p/t.toml", 2, 12, "process.hostname", "starts no variable"}},
		{"unset env", "[report]\nfile = \"${env:NOPE}/r.json\"\n", want{"/p/t.toml", 2, 8, "report.file", "NOPE is not set"}},
		{"unknown rlimit", "[process]\nrlimits = { nofile = 10, nfile = 3 }\n", want{"/p/t.toml", 2, 26, `process.rlimits.nfile`, `unknown rlimit "nfile"`}},
		{"rlimit soft above hard", "[process.rlimits]\nnofile = { soft = 10, hard = 5 }\n", want{"/p/t.toml", 2, 19, "process.rlimits.nofile.soft", "soft is above hard"}},
		{"bad cap", "[process]\ncap_add = [\"CAP_NET_BIND\"]\n", want{"/p/t.toml", 2, 12, "process.cap_add[0]", "not a capability"}},
		{"bad env name", "[process.env]\n\"A=B\" = \"x\"\n", want{"/p/t.toml", 2, 1, `process.env."A=B"`, "not a valid variable name"}},
		{"mount target relative", "[[filesystem.mount]]\ntype = \"tmpfs\"\ntarget = \"scratch\"\n", want{"/p/t.toml", 3, 10, "filesystem.mount[0].target", "not an absolute path"}},
		{"mount without source", "[[filesystem.mount]]\ntype = \"bind\"\nsource = \"/a\"\ntarget = \"/a\"\n\n[[filesystem.mount]]\ntype = \"bind\"\ntarget = \"/b\"\n", want{"/p/t.toml", 6, 3, "filesystem.mount[1]", "has no source"}},
		{"mount unknown key", "[[filesystem.mount]]\ntype = \"bind\"\nsource = \"/a\"\ntarget = \"/a\"\nread_only = true\n", want{"/p/t.toml", 5, 1, "filesystem.mount[0].read_only", "unknown key"}},
		{"ro and hide", "[filesystem]\nro = [\"/srv\"]\nhide = [\"/x\", \"/srv/\"]\n", want{"/p/t.toml", 3, 15, "filesystem.hide[1]", `"/srv" is also in filesystem.ro (/p/t.toml:2:7)`}},
		{"hide root", "[filesystem]\nhide = [\"/\"]\n", want{"/p/t.toml", 2, 9, "filesystem.hide[0]", "hide the whole file system"}},
		{"mount target twice", "[filesystem]\ntmpfs = [\"/s\"]\n[[filesystem.mount]]\ntype = \"tmpfs\"\ntarget = \"/s\"\n", want{"/p/t.toml", 3, 3, "filesystem.mount[0]", `target "/s" is also in filesystem.tmpfs`}},
		{"limit with enforce off", "[limits]\nenforce = \"off\"\npids = 100\n", want{"/p/t.toml", 3, 8, "limits.pids", `limits.enforce is "off" (/p/t.toml:2:11)`}},
		{"publish without network", "[network]\npublish = [\"8080:80\"]\n", want{"/p/t.toml", 2, 12, "network.publish[0]", `network.mode is "none"`}},
		{"bad publish", "[network]\nmode = \"pasta\"\npublish = [\"8080:0\"]\n", want{"/p/t.toml", 3, 12, "network.publish[0]", "bad port"}},
		{"profile none with deny", "[seccomp]\nprofile = \"none\"\ndeny = [\"ptrace\"]\n", want{"/p/t.toml", 3, 9, "seccomp.deny[0]", `seccomp.profile is "none"`}},
		{"allow and deny", "[seccomp]\nallow = [\"ptrace\"]\ndeny = [\"bpf\", \"ptrace\"]\n", want{"/p/t.toml", 3, 16, "seccomp.deny[1]", `"ptrace" is also in seccomp.allow`}},
		{"chdir hidden", "[filesystem]\nhide = [\"/home/u/src\"]\n", want{"/p/t.toml", 2, 9, "filesystem.hide[0]", "hides the working directory"}},
		{"explicit chdir hidden", "[filesystem]\nhide = [\"/srv\"]\nchdir = \"/srv/a\"\n", want{"/p/t.toml", 3, 9, "filesystem.chdir", "hidden by filesystem.hide[0]"}},
		{"replace unknown", "extends = \"default\"\nreplace = [\"filesystem.rx\"]\n", want{"/p/t.toml", 2, 12, "replace[0]", "not a list or table key"}},
		{"replace scalar", "extends = \"default\"\nreplace = [\"network.mode\"]\n", want{"/p/t.toml", 2, 12, "replace[0]", "not a list or table key"}},
		{"replace without extends", "replace = [\"filesystem.rw\"]\n", want{"/p/t.toml", 1, 12, "replace[0]", "nothing to replace"}},
		{"tmpfs with source", "[[filesystem.mount]]\ntype = \"tmpfs\"\nsource = \"/a\"\ntarget = \"/a\"\n", want{"/p/t.toml", 3, 1, "filesystem.mount[0].source", "a tmpfs mount has no source"}},
		{"bind with size", "[[filesystem.mount]]\ntype = \"bind\"\nsource = \"/a\"\ntarget = \"/a\"\nsize = \"1M\"\n", want{"/p/t.toml", 5, 1, "filesystem.mount[0].size", "tmpfs mounts only"}},
		{"mount over root", "filesystem.mount = [{ type = \"tmpfs\", target = \"/\" }]\n", want{"/p/t.toml", 1, 48, "filesystem.mount[0].target", "cannot replace the jail root"}},
		{"mount not a table", "[filesystem]\nmount = [\"/a\"]\n", want{"/p/t.toml", 2, 10, "filesystem.mount[0]", "not a table"}},
		{"bad glob", "[process]\nenv_pass = [\"LC_[\"]\n", want{"/p/t.toml", 2, 13, "process.env_pass[0]", "not a valid glob"}},
		{"NUL byte", "[process]\nenv = { A = \"x\\u0000y\" }\n", want{"/p/t.toml", 2, 13, "process.env.A", "contains a NUL byte"}},
		{"bad hostname", "[process]\nhostname = \"-box\"\n", want{"/p/t.toml", 2, 12, "process.hostname", "not a valid host name"}},
		{"bad errno", "[seccomp]\nerrno = \"EFOO\"\n", want{"/p/t.toml", 2, 9, "seccomp.errno", "not an errno name"}},
		{"relative profile", "[seccomp]\nprofile = \"prof.json\"\n", want{"/p/t.toml", 2, 11, "seccomp.profile", "neither a profile name nor an absolute path"}},
		{"bad syscall", "[seccomp]\ndeny = [\"Ptrace\"]\n", want{"/p/t.toml", 2, 9, "seccomp.deny[0]", "not a syscall name"}},
		{"report relative", "[report]\nfile = \"r.json\"\n", want{"/p/t.toml", 2, 8, "report.file", "not an absolute path"}},
		{"report bad fd", "[report]\nfile = \"fd:0\"\n", want{"/p/t.toml", 2, 8, "report.file", "not a file descriptor"}},
		{"rlimit without hard", "[process.rlimits]\nnofile = { soft = 10 }\n", want{"/p/t.toml", 2, 10, "process.rlimits.nofile", "has no hard value"}},
		{"rlimit size for count", "[process.rlimits]\nnofile = \"1K\"\n", want{"/p/t.toml", 2, 10, "process.rlimits.nofile", "not a limit"}},
		{"cpus too small", "[limits]\ncpus = 0.001\n", want{"/p/t.toml", 2, 8, "limits.cpus", "not a number in 0.01..4096"}},
		{"date value", "[process]\ntimeout = 1979-05-27\n", want{"/p/t.toml", 2, 11, "process.timeout", "is not a duration"}},
		{"loopback without helper", "[network]\nallow_host_loopback = true\n", want{"/p/t.toml", 2, 23, "network.allow_host_loopback", `no meaning with network.mode = "none"`}},
		{"extends not found", "\nextends = \"nosuch\"\n", want{"/p/t.toml", 2, 11, "extends", `policy "nosuch" not found`}},
		{"extends bad name", "extends = \"a b\"\n", want{"/p/t.toml", 1, 11, "extends", "not a policy name"}},
		{"extends missing file", "extends = \"./gone.toml\"\n", want{"/p/t.toml", 1, 11, "extends", "read /p/gone.toml: file does not exist"}},
		{"extends cycle", "extends = \"./cycle-a.toml\"\n", want{"/p/cycle-b.toml", 2, 11, "extends", "extends cycle: /p/t.toml -> /p/cycle-a.toml -> /p/cycle-b.toml -> /p/cycle-a.toml"}},
		{"error in extended file", "extends = \"broken.toml\"\n", want{"/p/broken.toml", 2, 10, "limits.memory", `"lots" is not a size`}},
		{"builtin contradiction through extends", "extends = \"build\"\n[filesystem]\nchdir = \"/home/u\"\n", want{"/p/t.toml", 3, 9, "filesystem.chdir", "hidden by filesystem.hide[0] (builtin:build:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("/p/t.toml", []byte(tc.src), testEnv(files))
			var pe *PosError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse() error = %v (%T); want a *PosError", err, err)
			}
			got := want{pe.File, pe.Line, pe.Col, pe.Key, tc.want.Msg}
			if !strings.Contains(pe.Msg, tc.want.Msg) {
				got.Msg = pe.Msg
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Parse() error %q mismatch (-want +got):\n%s", pe, diff)
			}
			if pe.Hint == "" {
				t.Errorf("Parse() error %q has no hint", pe)
			}
		})
	}
}

func TestPosErrorString(t *testing.T) {
	for _, tc := range []struct {
		e    PosError
		want string
	}{
		{PosError{File: "ci.toml", Line: 12, Col: 10, Key: "limits.memory", Msg: `"2GB" is not a size`, Hint: `use e.g. "2G" or "512M"`},
			`policy ci.toml:12:10: limits.memory: "2GB" is not a size; use e.g. "2G" or "512M"`},
		{PosError{File: "x", Msg: `policy "x" not found`}, `policy x: policy "x" not found`},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q; want %q", got, tc.want)
		}
	}
}
