//go:build linux && integration

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hookBundle is a bundle whose container has a tmpfs at /tmp (a mount only
// its mount namespace has) and the host directory out bound read-write at
// /out, with hooks set.
func hookBundle(t *testing.T, args []string, out string, hooks map[string]any) (bundle, rootfs string) {
	t.Helper()
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	b := ociBundle(t, args, func(m map[string]any) {
		m["mounts"] = append(m["mounts"].([]any),
			map[string]any{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": []any{"mode=1777"}},
			map[string]any{"destination": "/out", "type": "bind", "source": out, "options": []any{"rbind", "rw"}})
		m["hooks"] = hooks
	})
	rootfs = filepath.Join(b, "rootfs")
	if err := os.Mkdir(filepath.Join(rootfs, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	return b, rootfs
}

// shHook is a hook that runs script with the host's (createContainer) or
// the container's (startContainer) /bin/sh.
func shHook(script string, timeout int) map[string]any {
	h := map[string]any{"path": "/bin/sh", "args": []any{"sh", "-c", script}, "env": []any{"PATH=/usr/bin:/bin"}}
	if timeout > 0 {
		h["timeout"] = timeout
	}
	return h
}

type hookState struct {
	Version string `json:"ociVersion"`
	ID      string `json:"id"`
	Status  string `json:"status"`
	Pid     int    `json:"pid"`
	Bundle  string `json:"bundle"`
}

func readHookState(t *testing.T, file string) hookState {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the hook left no state: %v", err)
	}
	var st hookState
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("hook state %q: %v", data, err)
	}
	return st
}

// TestOCIContainerHooks: a createContainer hook runs at create, in the
// container's mount namespace before pivot_root: it finds the container's
// root (with the config's tmpfs) attached over root.path, its current
// directory there, and the host's file system around it; what it writes
// into the container's /tmp is there for the container's process. A
// startContainer hook runs after start, in the container's root, before
// start returns (poststart after it); prestart and createRuntime run
// before createContainer. Both get
// the state on stdin: the container's id, status "creating" / "created"
// (runc's), and init's pid.
func TestOCIContainerHooks(t *testing.T) {
	out := t.TempDir()
	var b, rootfs string
	create := `read s; echo "$s" > ` + out + `/create-state; pwd > ` + out + `/create-cwd
readlink /proc/self/ns/mnt > ` + out + `/create-mntns
grep -q " $ROOTFS/tmp " /proc/self/mountinfo && echo tmpfs-at-rootfs >> ` + out + `/create-seen
test -f "$ROOTFS/bin/busybox" && echo rootfs >> ` + out + `/create-seen
test -e /out || echo host-root >> ` + out + `/create-seen
echo made-by-hook > "$ROOTFS/tmp/from-hook"; echo createContainer >> ` + out + `/order`
	start := `read s; echo "$s" > /out/start-state; ls / > /out/start-root; cat /tmp/from-hook > /out/start-saw; echo startContainer >> /out/order`
	hooks := map[string]any{"createContainer": []any{shHook(create, 10)}, "startContainer": []any{shHook(start, 10)},
		"prestart": []any{shHook("echo prestart >> "+out+"/order", 0)}, "createRuntime": []any{shHook("echo createRuntime >> "+out+"/order", 0)},
		"poststart": []any{shHook("echo poststart >> "+out+"/order", 0)}}
	b, rootfs = hookBundle(t, []string{"sh", "-c", "cat /tmp/from-hook > /out/process-saw; /bin/busybox readlink /proc/self/ns/mnt > /out/process-mntns"}, out, hooks)
	// The hook finds root.path in its environment.
	hooks["createContainer"].([]any)[0].(map[string]any)["env"] = []any{"PATH=/usr/bin:/bin", "ROOTFS=" + rootfs}
	rewriteHooks(t, b, hooks)
	id := "cthooks" + strconv.Itoa(os.Getpid())
	if r := oci(t, b, "", "create", "--bundle", b, id); r.code != 0 {
		t.Fatalf("create: %d %s", r.code, r.stderr)
	}
	defer oci(t, b, "", "delete", "--force", id)
	_, pid := ociStatus(t, b, id)

	st := readHookState(t, filepath.Join(out, "create-state"))
	if st.ID != id || st.Status != "creating" || st.Pid != pid || st.Bundle != b || st.Version == "" {
		t.Errorf("createContainer state %+v, want id %s, status creating, pid %d (init), bundle %s", st, id, pid, b)
	}
	if cwd, _ := os.ReadFile(filepath.Join(out, "create-cwd")); strings.TrimSpace(string(cwd)) != rootfs {
		t.Errorf("createContainer hook ran in %q, want the container's root %s", cwd, rootfs)
	}
	if seen, _ := os.ReadFile(filepath.Join(out, "create-seen")); string(seen) != "tmpfs-at-rootfs\nrootfs\nhost-root\n" {
		t.Errorf("createContainer hook saw %q, want the container's tmpfs at root.path, the rootfs and the host's root", seen)
	}
	own, _ := os.Readlink("/proc/self/ns/mnt")
	hookNS, _ := os.ReadFile(filepath.Join(out, "create-mntns"))
	if strings.TrimSpace(string(hookNS)) == own {
		t.Errorf("createContainer hook ran in the caller's mount namespace %s", own)
	}
	if _, err := os.Stat(filepath.Join(out, "start-state")); err == nil {
		t.Errorf("the startContainer hook ran before start")
	}

	if r := oci(t, b, "", "start", id); r.code != 0 {
		t.Fatalf("start: %d %s", r.code, r.stderr)
	}
	waitStatus(t, b, id, "stopped")
	st = readHookState(t, filepath.Join(out, "start-state"))
	if st.ID != id || st.Status != "created" || st.Pid != pid {
		t.Errorf("startContainer state %+v, want id %s, status created, pid %d (init)", st, id, pid)
	}
	// The container's root: its /out, no host directory.
	if root, _ := os.ReadFile(filepath.Join(out, "start-root")); !strings.Contains(string(root), "out\n") || strings.Contains(string(root), "usr\n") {
		t.Errorf("startContainer hook's root %q is not the container's", root)
	}
	for _, f := range []string{"start-saw", "process-saw"} {
		if got, _ := os.ReadFile(filepath.Join(out, f)); string(got) != "made-by-hook\n" {
			t.Errorf("%s: %q, want what the createContainer hook wrote into the container's /tmp", f, got)
		}
	}
	if ns, _ := os.ReadFile(filepath.Join(out, "process-mntns")); string(ns) != string(hookNS) {
		t.Errorf("createContainer hook's mount namespace %q, the container's %q", hookNS, ns)
	}
	// The runtime-spec's order.
	if order, _ := os.ReadFile(filepath.Join(out, "order")); string(order) != "prestart\ncreateRuntime\ncreateContainer\nstartContainer\npoststart\n" {
		t.Errorf("hooks ran in the order %q", order)
	}
}

// rewriteHooks sets the hooks of b's config.json.
func rewriteHooks(t *testing.T, b string, hooks map[string]any) {
	t.Helper()
	cfg := filepath.Join(b, "config.json")
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	m["hooks"] = hooks
	data, _ = json.Marshal(m)
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOCIContainerHookFails: a createContainer hook that fails (a status,
// a path that does not exist, its timeout), or a createRuntime hook before
// it, fails create with one line
// naming the hook, status 1, and leaves nothing: no state, no process.
// What the hook itself writes goes to the container's stdout and stderr
// (here create's), before warden's error line.
func TestOCIContainerHookFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		hook map[string]any
		want string
	}{
		{"status", shHook("echo no-go >&2; exit 3", 0), "createContainer hook 0 (/bin/sh): exit status 3"},
		{"missing", map[string]any{"path": "/nonexistent/hook"}, "createContainer hook 0 (/nonexistent/hook): execve: no such file or directory"},
		{"timeout", shHook("sleep 6047", 1), "createContainer hook 0 (/bin/sh): timed out after 1s (killed)"},
		// createRuntime runs first, while init waits before its hooks.
		{"createRuntime", shHook("touch /nonexistent/ran; exit 0", 0), "createRuntime hook 0 (/bin/sh): exit status 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hooks := map[string]any{"createContainer": []any{tc.hook}}
			if tc.name == "createRuntime" {
				hooks["createRuntime"] = []any{shHook("exit 5", 0)}
			}
			b, _ := hookBundle(t, []string{"sleep", "6053"}, t.TempDir(), hooks)
			id := "cthookfail-" + tc.name + strconv.Itoa(os.Getpid())
			t0 := time.Now()
			r := oci(t, b, "", "create", "--bundle", b, id)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if last := lines[len(lines)-1]; r.code != 1 || !strings.HasPrefix(last, "warden-oci: ") || !strings.Contains(last, tc.want) {
				t.Errorf("create: %d, want 1 and an error line with %q last:\n%s", r.code, tc.want, r.stderr)
			}
			if tc.name == "status" && lines[0] != "no-go" {
				t.Errorf("the hook's own stderr is not there: %q", r.stderr)
			}
			if tc.name == "timeout" && time.Since(t0) > 5*time.Second {
				t.Errorf("create took %v with a hook timeout of 1s", time.Since(t0))
			}
			if r := oci(t, b, "", "state", id); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
				t.Errorf("state after a failed create: %d %s", r.code, r.stderr)
			}
			root := filepath.Join(os.TempDir(), "warden-oci-test-"+strconv.Itoa(os.Getuid()))
			if _, err := os.Stat(filepath.Join(root, id)); !os.IsNotExist(err) {
				t.Errorf("state directory left behind: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // the kernel ends the pid namespace
			for _, p := range []string{"sleep 6047", "sleep 6053"} {
				if procs := findProc(t, p); len(procs) > 0 {
					t.Errorf("processes left: %s %v", p, procs)
				}
			}
		})
	}
}

// TestOCIStartHookFails: a startContainer hook that fails (a status, a
// path the container does not have, its timeout) fails start with one
// line naming the hook, status 1; the container's process never runs, the
// container is stopped with no process left, and delete removes it.
func TestOCIStartHookFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		hook map[string]any
		want string
	}{
		{"status", shHook("exit 4", 0), "start: startContainer hook 0 (/bin/sh): exit status 4"},
		{"missing", map[string]any{"path": "/usr/bin/not-in-the-container"}, "start: startContainer hook 0 (/usr/bin/not-in-the-container): execve: no such file or directory"},
		{"timeout", shHook("sleep 6059", 1), "start: startContainer hook 0 (/bin/sh): timed out after 1s (killed)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			b, _ := hookBundle(t, []string{"sh", "-c", "echo ran > /out/ran; sleep 6061"}, out,
				map[string]any{"startContainer": []any{shHook("true", 0), tc.hook}})
			tc.want = strings.Replace(tc.want, "hook 0", "hook 1", 1)
			id := "sthookfail-" + tc.name + strconv.Itoa(os.Getpid())
			if r := oci(t, b, "", "create", "--bundle", b, id); r.code != 0 {
				t.Fatalf("create: %d %s", r.code, r.stderr)
			}
			_, pid := ociStatus(t, b, id)
			r := oci(t, b, "", "start", id)
			if r.code != 1 || strings.TrimSpace(r.stderr) != "warden-oci: "+tc.want {
				t.Errorf("start: %d, want 1 and the one line %q:\n%s", r.code, tc.want, r.stderr)
			}
			waitStatus(t, b, id, "stopped")
			if _, err := os.Stat(filepath.Join(out, "ran")); err == nil {
				t.Errorf("the container's process ran after its startContainer hook failed")
			}
			if r := oci(t, b, "", "delete", id); r.code != 0 {
				t.Errorf("delete: %d %s", r.code, r.stderr)
			}
			for _, p := range []string{"sleep 6059", "sleep 6061"} {
				if procs := findProc(t, p); len(procs) > 0 {
					t.Errorf("processes left: %s %v", p, procs)
				}
			}
			if running(pid) {
				t.Errorf("init %d still there", pid)
			}
		})
	}
}
