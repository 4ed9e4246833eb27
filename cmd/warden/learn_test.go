//go:build linux

package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/policies"
	"github.com/warden-sandbox/warden/sandbox"
	"github.com/warden-sandbox/warden/seccomp"
)

func TestLearnedPolicy(t *testing.T) {
	in := learnInput{
		Base: "default", Argv: []string{"make", "-j2"}, Cwd: "/home/u/proj/sub", Home: "/home/u", Project: "/home/u/proj",
		Date: "2026-12-02",
		Traces: []sandbox.TraceResult{
			{Target: "/usr", Source: "/usr", ReadOnly: true, Accesses: sandbox.Accesses{
				Read: []string{".", "bin/make", "bin/cc", "lib/gcc/x86_64-linux-gnu/12/cc1", "lib/x86_64-linux-gnu/libc.so.6",
					"include/a.h", "include/b.h", "include/c.h", "include/d.h", "include/e.h", "include/f.h", "include/g.h", "include/h.h"},
				StatOnly: []string{"lib", "lib/gcc", "local/go/bin"},
			}},
			{Target: "/etc", Source: "/etc", ReadOnly: true, Accesses: sandbox.Accesses{
				Read: []string{"ld.so.cache", "alternatives/cc", "localtime"},
			}},
			{Target: "/opt", Source: "/opt", ReadOnly: true, Accesses: sandbox.Accesses{StatOnly: []string{"tool"}}},
			{Target: "/opt/tool", Source: "/opt/tool", Accesses: sandbox.Accesses{Created: []string{"out"}}},
			{Target: "/home/u/proj", Source: "/home/u/proj", Accesses: sandbox.Accesses{Read: []string{"Makefile"}, Created: []string{"prog"}}},
			{Target: "/home/u/.config/git", Source: "/home/u/.config/git", ReadOnly: true, Accesses: sandbox.Accesses{Read: []string{"config"}}},
			{Target: "/home/u/unused", Source: "/home/u/unused"},
			{Target: "/home/u/tmpwork", Source: "/home/u/tmpwork", Changes: 3},
			{Target: "/srv/broken", Source: "/srv/broken", Err: errors.New("the jail's init did not hand over the FUSE mount")},
		},
		Kept: []keptMount{{Path: "/home/u/.gitconfig", ReadOnly: true, Why: "a file shown on its own: not traced, kept"},
			{Path: "/scratch", Tmpfs: true, Why: "a tmpfs of team.toml:3:1, kept"}},
		Denials: []seccomp.Denial{{Syscall: "ptrace", Count: 3, FirstPID: 4, FirstArgv: []string{"strace", "ls"}}},
		Symlink: func(p string) bool { return p == "/etc/alternatives/cc" || p == "/etc/localtime" },
	}
	text, sum := learnedPolicy(in)
	for _, want := range []string{
		"extends = \"default\"\n",
		"replace = [\"filesystem.ro\", \"filesystem.rw\", \"filesystem.mount\"]\n",
		`"${HOME}/.gitconfig", # a file shown on its own: not traced, kept`,
		`"/scratch", # a tmpfs of team.toml:3:1, kept`,
		`"${PROJECT}", # written by the command: 1 created`,
		`"${HOME}/tmpwork", # written by the command: 0 created, 0 written, 0 deleted (3 changes`,
		`"${HOME}/.config/git", # read by the command: 1 files`,
		`"/srv/broken", # not traced (the jail's init did not hand over the FUSE mount): shown as under default`,
		`"/usr/bin/make", # read by the command: 1`, // few files of a directory: one by one
		`"/usr/bin/cc", # read by the command: 1`,
		`"/usr/lib/gcc", # read by the command: 1, looked up: 1`,
		`"/usr/lib/x86_64-linux-gnu", # read by the command: 1`,
		`"/usr/include", # read by the command: 8`, // eight headers: the directory
		`"/usr/local/go/bin", # looked up by the command: 1`,
		`"/etc/alternatives", # read by the command: 1`, // a symlink below the top: its directory
		`"/etc/localtime", # read by the command: 1`,    // at the top: the file it points to
		`"/etc/ld.so.cache", # read by the command: 1`,
		`"/usr", # only what the command used is shown in it`,
		`"/opt/tool", # written by the command`,
		`"ptrace", # denied 3× by the profile (first: strace ls)`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("learned policy lacks %q:\n%s", want, text)
		}
	}
	if strings.Count(text, `"/opt/tool"`) != 1 {
		t.Errorf("/opt/tool, a policy's own bind inside a system directory, is listed more than once:\n%s", text)
	}
	for _, absent := range []string{`"/usr/lib",`, `"/usr/include/a.h"`, `"/usr/lib/gcc/x86_64-linux-gnu`, `unused`, `"/etc/alternatives/cc"`, `"/usr/local/go",`} {
		if strings.Contains(text, absent) {
			t.Errorf("learned policy has %q:\n%s", absent, text)
		}
	}
	if !strings.HasPrefix(sum, "4 read-write, ") || !strings.Contains(sum, "1 syscalls allowed") {
		t.Errorf("summary %q", sum)
	}
	// It is a policy: it parses, with the variables expanded.
	env := policies.Env{CWD: in.Cwd, Home: in.Home, Project: in.Project, User: "u", UID: 1000, GID: 1000, TmpDir: "/tmp"}
	p, err := policies.Parse("learned.toml", []byte(text), env)
	if err != nil {
		t.Fatalf("the learned policy does not parse: %v\n%s", err, text)
	}
	if !contains(p.Filesystem.RW, "/home/u/proj") || !contains(p.Filesystem.Tmpfs, "/etc") || !contains(p.Seccomp.Allow, "ptrace") {
		t.Errorf("parsed: rw %v tmpfs %v allow %v", p.Filesystem.RW, p.Filesystem.Tmpfs, p.Seccomp.Allow)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
