package jails

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{"svc": true, "a.b_c-1": true, "": false, "../x": false, "-x": false, "a/b": false, "x y": false, ".x": false, "_x": false, "9": true, "é": false,
		strings.Repeat("a", 63): true, strings.Repeat("a", 64): false} {
		if got := CheckName(name) == ""; got != ok {
			t.Errorf("CheckName(%q) ok = %v, want %v", name, got, ok)
		}
	}
	if n := NewName(); CheckName(n) != "" {
		t.Errorf("NewName() = %q: %s", n, CheckName(n))
	}
}

// TestListForgetsStale: a jail that says running but whose supervisor is
// not the recorded process (dead, or its pid reused) is removed, never
// listed; a stopped one stays until it is removed.
func TestListForgetsStale(t *testing.T) {
	root := t.TempDir()
	self, err := StartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*State{
		{Name: "live", State: Running, SupervisorPid: os.Getpid(), SupervisorStart: self},
		{Name: "reused", State: Running, SupervisorPid: os.Getpid(), SupervisorStart: self + 1},
		{Name: "done", State: Stopped, Exit: "exit 0"},
	} {
		st.Created = time.Now()
		dir := Dir(root, st.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := Write(dir, st); err != nil {
			t.Fatal(err)
		}
	}
	list, err := List(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range list {
		names = append(names, st.Name)
	}
	if len(names) != 2 || names[0] != "done" || names[1] != "live" {
		t.Errorf("List = %v, want [done live]", names)
	}
	if _, err := os.Stat(filepath.Join(root, "reused")); !os.IsNotExist(err) {
		t.Errorf("the stale jail's directory: %v", err)
	}
}

// TestRootPrivate: the state directory must be the caller's own and
// private; one others could write is refused.
func TestRootPrivate(t *testing.T) {
	rt := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", rt)
	root, err := Root()
	if err != nil || root != filepath.Join(rt, "warden", "jails") {
		t.Fatalf("Root() = %q, %v", root, err)
	}
	if err := os.Chmod(root, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Root(); err == nil {
		t.Error("Root() accepted a world-writable directory")
	}
}
