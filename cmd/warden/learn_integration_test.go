//go:build linux && integration

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// learnAndRerun learns a policy from script run in e.cwd, checks it, and
// runs script again under it: same output, status 0.
func learnAndRerun(t *testing.T, e *sandboxEnv, script string) string {
	t.Helper()
	pol := filepath.Join(t.TempDir(), "learned.toml")
	first := e.run(t, nil, "policy", "learn", "--out", pol, "--", "sh", "-c", script)
	if first.code != 0 || !strings.Contains(first.stderr, "warden: learned") {
		t.Fatalf("policy learn: %d\n%s\n%s", first.code, first.stdout, first.stderr)
	}
	if r := e.run(t, nil, "policy", "check", pol); r.code != 0 {
		b, _ := os.ReadFile(pol)
		t.Fatalf("policy check of the learned policy: %d\n%s\n%s", r.code, r.stderr, b)
	}
	again := e.run(t, nil, "run", "--policy", pol, "--", "sh", "-c", script)
	if again.code != 0 || again.stdout != first.stdout {
		b, _ := os.ReadFile(pol)
		t.Fatalf("the command under its learned policy: %d, stdout %q (learning run: %q)\n%s\n%s", again.code, again.stdout, first.stdout, again.stderr, b)
	}
	return pol
}

// refused runs argv under policy pol and wants it to fail.
func refused(t *testing.T, e *sandboxEnv, pol string, argv ...string) {
	t.Helper()
	r := e.run(t, nil, append([]string{"run", "--policy", pol, "--"}, argv...)...)
	if r.code == 0 {
		t.Errorf("%v under the learned policy: succeeded (%q), want it refused", argv, r.stdout)
	}
}

// TestPolicyLearnScript: a shell script of coreutils and python3 that
// reads, writes and deletes in its project. Its learned policy runs it
// again, and shows nothing else: /etc/passwd, the system's headers and the
// home directory's keys are out of reach.
func TestPolicyLearnScript(t *testing.T) {
	e := newEnv(t)
	writeFiles(t, e.cwd, map[string]string{"data.csv": "b,2\na,1\n"})
	script := `sort data.csv > sorted.csv && wc -l < sorted.csv && ` +
		`python3 -c 'import json,csv; print(json.dumps(dict(csv.reader(open("sorted.csv")))))' && rm sorted.csv`
	pol := learnAndRerun(t, e, script)
	b, _ := os.ReadFile(pol)
	for _, want := range []string{`extends = "default"`, `"${PROJECT}", # written by the command`, `"/usr/bin", # read by the command`, "tmpfs = [", `"/etc", #`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("learned policy lacks %q:\n%s", want, b)
		}
	}
	refused(t, e, pol, "cat", "/etc/passwd")
	refused(t, e, pol, "ls", "/usr/include")
	refused(t, e, pol, "cat", filepath.Join(e.home, ".ssh", "id_rsa"))
}

// TestPolicyLearnMake: make of a small C project. The compiler finds its
// parts through symlinks (/usr/bin/cc → /etc/alternatives/cc → gcc), which
// the learned policy keeps as symlinks.
func TestPolicyLearnMake(t *testing.T) {
	e := newEnv(t)
	writeFiles(t, e.cwd, map[string]string{
		"main.c":   "#include <stdio.h>\n#include \"util.h\"\nint main(void){ printf(\"%d\\n\", twice(21)); return 0; }\n",
		"util.h":   "int twice(int);\n",
		"util.c":   "#include \"util.h\"\nint twice(int x){ return 2*x; }\n",
		"Makefile": "prog: main.o util.o\n\tcc -o $@ main.o util.o\n%.o: %.c util.h\n\tcc -O2 -c $<\nclean:\n\trm -f prog *.o\n",
	})
	pol := learnAndRerun(t, e, "make -s clean && make -s && ./prog")
	refused(t, e, pol, "cat", "/etc/passwd")
	refused(t, e, pol, "python3", "-c", "print(1)")
}

// TestPolicyLearnFromFile: learned under a policy file named by a relative
// path, the learned policy written elsewhere still extends that file.
func TestPolicyLearnFromFile(t *testing.T) {
	e := newEnv(t)
	writeFiles(t, e.cwd, map[string]string{"team.toml": "extends = \"default\"\n[process]\nenv = { TEAM = \"yes\" }\n"})
	pol := filepath.Join(t.TempDir(), "learned.toml")
	if r := e.run(t, nil, "policy", "learn", "--policy", "./team.toml", "--out", pol, "--", "sh", "-c", "echo $TEAM"); r.code != 0 || r.stdout != "yes\n" {
		t.Fatalf("policy learn: %d %q\n%s", r.code, r.stdout, r.stderr)
	}
	b, _ := os.ReadFile(pol)
	if want := `extends = "` + filepath.Join(e.cwd, "team.toml") + `"`; !strings.Contains(string(b), want) {
		t.Errorf("learned policy lacks %s:\n%s", want, b)
	}
	if r := e.run(t, nil, "run", "--policy", pol, "--", "sh", "-c", "echo $TEAM"); r.code != 0 || r.stdout != "yes\n" {
		t.Errorf("under the learned policy: %d %q\n%s", r.code, r.stdout, r.stderr)
	}
}
