//go:build linux

package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"Usage:", "warden run", "Examples:", "Exit status"}},
		{[]string{"help", "run"}, []string{"--policy", "--ro", "--seccomp", "--memory", "Examples:"}},
		{[]string{"run", "--help"}, []string{"--policy", "--timeout", "Examples:"}},
		{[]string{"check", "--help"}, []string{"warden check [--json]", "--json"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tc.args, &out, &errb); code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errb.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("help lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"run", "--bogus", "--", "true"}, "unknown flag: --bogus"},
		{[]string{"run", "--log-level", "loud", "--", "true"}, `--log-level "loud"`},
		{[]string{"run", "--"}, "no command given"},
		{[]string{"run", "--rlimit", "nofiles=3", "--", "true"}, `--rlimit: unknown rlimit "nofiles"`},
		{[]string{"run", "--memory", "2GB", "--", "true"}, "--memory"},
		{[]string{"run", "--net", "bridge", "--", "true"}, "--net"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != exitWarden {
				t.Errorf("exit %d, want 125", code)
			}
			lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
			if !strings.HasPrefix(lines[0], "warden: error: ") || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr %q, want a warden: error: line containing %q", errb.String(), tc.want)
			}
			for _, l := range lines[1:] {
				if !strings.HasPrefix(l, "warden: hint: ") {
					t.Errorf("extra stderr line %q", l)
				}
			}
		})
	}
}
