//go:build linux && integration

package main

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox/schematest"
)

// ociBundle makes a bundle: a busybox root file system (Debian's
// busybox-static) and the config `warden-oci spec --rootless` writes, with
// args and edit applied.
func ociBundle(t *testing.T, args []string, edit func(m map[string]any)) string {
	t.Helper()
	b := t.TempDir()
	root := filepath.Join(b, "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("needs busybox-static (scripts/setup.sh installs it): %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "ls", "cat", "echo", "sleep", "id", "ps", "true", "hostname", "trap"} {
		os.Symlink("busybox", filepath.Join(root, "bin", a))
	}
	oci(t, b, "", "spec", "--rootless", "--bundle", b)
	var m map[string]any
	data, err := os.ReadFile(filepath.Join(b, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	m["process"].(map[string]any)["args"] = args
	if edit != nil {
		edit(m)
	}
	data, _ = json.Marshal(m)
	if err := os.WriteFile(filepath.Join(b, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// oci runs warden-oci (the binary under that name) with --root under dir.
func oci(t *testing.T, dir, stdin string, args ...string) result {
	t.Helper()
	link := filepath.Join(t.TempDir(), "warden-oci")
	if err := os.Symlink(wardenBin(t), link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link, append([]string{"--root", filepath.Join(os.TempDir(), "warden-oci-test-"+strconv.Itoa(os.Getuid()))}, args...)...)
	cmd.Dir = dir
	// Files, not pipes: a created container's init keeps create's stdout
	// and stderr (they are the container's), so a pipe would not end.
	tmp := t.TempDir()
	out, _ := os.Create(filepath.Join(tmp, "out"))
	errf, _ := os.Create(filepath.Join(tmp, "err"))
	defer out.Close()
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = out, errf
	cmd.Stdin = strings.NewReader(stdin)
	err := cmd.Run()
	ob, _ := os.ReadFile(out.Name())
	eb, _ := os.ReadFile(errf.Name())
	r := result{stdout: string(ob), stderr: string(eb)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// running: pid exists and is not a zombie (an orphaned init is reaped by
// whoever adopted it: conmon or a shim in real use, here the machine's init,
// which may take its time).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

func ociStatus(t *testing.T, b, id string) (string, int) {
	t.Helper()
	r := oci(t, b, "", "state", id)
	if r.code != 0 {
		return "", -1
	}
	var st struct {
		Status  string `json:"status"`
		Pid     int    `json:"pid"`
		Created string `json:"created"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("state: %v\n%s", err, r.stdout)
	}
	if _, err := time.Parse(time.RFC3339Nano, st.Created); err != nil {
		t.Errorf("created %q is not RFC 3339: %v", st.Created, err)
	}
	return st.Status, st.Pid
}

func waitStatus(t *testing.T, b, id, want string) {
	t.Helper()
	for i := 0; i < 300; i++ {
		if s, _ := ociStatus(t, b, id); s == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s, _ := ociStatus(t, b, id)
	t.Fatalf("container %s: status %q, want %q", id, s, want)
}

// TestOCILifecycle: create → created (init waits, the command has not run)
// → start → running → the command's output → stopped (pid 0) → delete, and
// nothing left.
func TestOCILifecycle(t *testing.T) {
	b := ociBundle(t, []string{"sh", "-c", "echo started > /tmp/x; cat /tmp/x; id -u; hostname; sleep 0.3"}, func(m map[string]any) {
		m["mounts"] = append(m["mounts"].([]any), map[string]any{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": []any{"mode=1777"}})
	})
	id := "life" + strconv.Itoa(os.Getpid())
	pidFile := filepath.Join(t.TempDir(), "pid")
	// create's own stdout is the container's: read it from a file.
	outFile := filepath.Join(t.TempDir(), "out")
	link := filepath.Join(t.TempDir(), "warden-oci")
	os.Symlink(wardenBin(t), link)
	root := filepath.Join(os.TempDir(), "warden-oci-test-"+strconv.Itoa(os.Getuid()))
	f, _ := os.Create(outFile)
	cmd := exec.Command(link, "--root", root, "create", "--bundle", b, "--pid-file", pidFile, id)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(outFile)
		t.Fatalf("create: %v\n%s", err, out)
	}
	f.Close()
	pb, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	s, pid := ociStatus(t, b, id)
	if s != "created" || strconv.Itoa(pid) != string(pb) {
		t.Fatalf("after create: %s pid %d, pid file %q", s, pid, pb)
	}
	if out, _ := os.ReadFile(outFile); len(out) != 0 {
		t.Errorf("the command ran before start: %q", out)
	}
	// warden's own report: what is enforced, for the container too.
	r := oci(t, b, "", "report", id)
	if errs, err := schematest.Validate("../../docs/report.schema.json", []byte(r.stdout)); err != nil || len(errs) > 0 {
		t.Errorf("oci report against the schema: %v %v\n%s", err, errs, r.stdout)
	}
	for _, want := range []string{`"kind": "created"`, `"name": "pidns"`, "config.json"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("oci report lacks %s:\n%s", want, r.stdout)
		}
	}
	if r := oci(t, b, "", "start", id); r.code != 0 {
		t.Fatalf("start: %d %s", r.code, r.stderr)
	}
	waitStatus(t, b, id, "running")
	if r := oci(t, b, "", "delete", id); r.code == 0 || !strings.Contains(r.stderr, "not stopped") {
		t.Errorf("delete of a running container: %d %s", r.code, r.stderr)
	}
	waitStatus(t, b, id, "stopped")
	if _, pid := ociStatus(t, b, id); pid != 0 {
		t.Errorf("stopped container has pid %d, want 0", pid)
	}
	if out, _ := os.ReadFile(outFile); string(out) != "started\n0\nwarden\n" {
		t.Errorf("container output %q", out)
	}
	if r := oci(t, b, "", "start", id); r.code == 0 {
		t.Errorf("start of a stopped container succeeded")
	}
	if r := oci(t, b, "", "kill", id, "TERM"); r.code == 0 || !strings.Contains(r.stderr, "container not running") {
		t.Errorf("kill of a stopped container: %d %s", r.code, r.stderr)
	}
	if r := oci(t, b, "", "delete", id); r.code != 0 {
		t.Fatalf("delete: %d %s", r.code, r.stderr)
	}
	if r := oci(t, b, "", "state", id); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("state after delete: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(root, id)); !os.IsNotExist(err) {
		t.Errorf("state directory left behind: %v", err)
	}
}

// TestOCIKill: kill by name and by number reaches the container's process
// (its trap runs), SIGKILL ends the container, delete --force of a running
// one leaves no process.
func TestOCIKill(t *testing.T) {
	for i, sig := range []string{"USR1", "10", "SIGUSR1"} {
		b := ociBundle(t, []string{"sh", "-c", "trap 'echo got-usr1 > /tmp/sig; exit 7' USR1; while :; do sleep 0.05; done"}, func(m map[string]any) {
			m["root"].(map[string]any)["readonly"] = false
		})
		id := "kill" + strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(i)
		if r := oci(t, b, "", "create", "--bundle", b, id); r.code != 0 {
			t.Fatalf("create: %s", r.stderr)
		}
		_, pid := ociStatus(t, b, id)
		oci(t, b, "", "start", id)
		waitStatus(t, b, id, "running")
		time.Sleep(100 * time.Millisecond) // the trap is set
		if r := oci(t, b, "", "kill", id, sig); r.code != 0 {
			t.Fatalf("kill %s: %d %s", sig, r.code, r.stderr)
		}
		waitStatus(t, b, id, "stopped")
		if got, _ := os.ReadFile(filepath.Join(b, "rootfs/tmp/sig")); string(got) != "got-usr1\n" {
			t.Errorf("kill %s: the trap did not run (%q)", sig, got)
		}
		oci(t, b, "", "delete", id)
		if running(pid) {
			t.Errorf("init %d still there after delete", pid)
		}
	}
	// A duration no other test uses: findProc looks at every process.
	b := ociBundle(t, []string{"sleep", "6017"}, nil)
	id := "killf" + strconv.Itoa(os.Getpid())
	oci(t, b, "", "create", "--bundle", b, id)
	_, pid := ociStatus(t, b, id)
	oci(t, b, "", "start", id)
	waitStatus(t, b, id, "running")
	if r := oci(t, b, "", "delete", "--force", id); r.code != 0 {
		t.Fatalf("delete --force: %d %s", r.code, r.stderr)
	}
	if running(pid) {
		t.Errorf("init %d alive after delete --force", pid)
	}
	if procs := findProc(t, "sleep 6017"); len(procs) > 0 {
		t.Errorf("container processes left: %v", procs)
	}
}

// TestOCIBadConfig: a bad config.json gets one clear error, exit non-zero,
// and nothing is left behind (no state, no process).
func TestOCIBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"version", func(m map[string]any) { m["ociVersion"] = "0.9" }, "unknown version"},
		{"rootfs", func(m map[string]any) { m["root"].(map[string]any)["path"] = "nothere" }, "root.path nothere: not a directory"},
		{"outside", func(m map[string]any) {
			m["mounts"] = append(m["mounts"].([]any), map[string]any{"destination": "/../../etc/evil", "type": "tmpfs", "source": "tmpfs"})
		}, "without \"..\""},
		{"hooks", func(m map[string]any) {
			m["hooks"] = map[string]any{"createContainer": []any{map[string]any{"path": "true"}}}
		}, `hooks.createContainer[0].path "true" must be an absolute path`},
		{"failing-hook", func(m map[string]any) {
			m["hooks"] = map[string]any{"createRuntime": []any{map[string]any{"path": "/bin/sh", "args": []any{"sh", "-c", "echo no-go; exit 3"}}}}
		}, "createRuntime hook 0 (/bin/sh): exit status 3: no-go"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := ociBundle(t, []string{"true"}, tc.edit)
			id := "bad-" + tc.name + strconv.Itoa(os.Getpid())
			r := oci(t, b, "", "create", "--bundle", b, id)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("create: %d, want an error with %q on one line:\n%s", r.code, tc.want, r.stderr)
			}
			if r := oci(t, b, "", "state", id); r.code == 0 {
				t.Errorf("state of a failed create exists")
			}
		})
	}
}

// TestOCIConsole: process.terminal with --console-socket: one message
// carries the terminal's master (SCM_RIGHTS), as runc sends it; the
// container's process has the slave as its controlling terminal and its
// stdio.
func TestOCIConsole(t *testing.T) {
	b := ociBundle(t, []string{"sh", "-c", "tty; test -t 0 && test -t 1 && echo is-a-tty; exit 2"}, func(m map[string]any) {
		m["process"].(map[string]any)["terminal"] = true
	})
	id := "tty" + strconv.Itoa(os.Getpid())
	sock := filepath.Join(t.TempDir(), "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	master := make(chan *os.File, 1)
	go func() {
		c, err := ln.AcceptUnix()
		if err != nil {
			master <- nil
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 128), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			master <- nil
			return
		}
		cms, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if len(cms) != 1 {
			master <- nil
			return
		}
		fds, _ := unix.ParseUnixRights(&cms[0])
		if len(fds) != 1 {
			master <- nil
			return
		}
		master <- os.NewFile(uintptr(fds[0]), "master")
	}()
	if r := oci(t, b, "", "create", "--bundle", b, "--console-socket", sock, id); r.code != 0 {
		t.Fatalf("create: %d %s", r.code, r.stderr)
	}
	defer oci(t, b, "", "delete", "--force", id)
	m := <-master
	if m == nil {
		t.Fatal("no terminal master on the console socket")
	}
	defer m.Close()
	if r := oci(t, b, "", "start", id); r.code != 0 {
		t.Fatalf("start: %d %s", r.code, r.stderr)
	}
	out, _ := io.ReadAll(m) // EIO once the slave's last holder is gone
	if s := strings.ReplaceAll(string(out), "\r", ""); !strings.HasPrefix(s, "/dev/pts/0\n") || !strings.Contains(s, "is-a-tty") {
		t.Errorf("terminal output %q", out)
	}
	if r := oci(t, b, "", "create", "--bundle", b, id+"x"); r.code == 0 || !strings.Contains(r.stderr, "--console-socket") {
		t.Errorf("terminal without a console socket: %d %s", r.code, r.stderr)
	}
}

// TestOCIHooks: prestart and createRuntime run at create, poststart at
// start, poststop at delete, each in order with the state on stdin.
func TestOCIHooks(t *testing.T) {
	log := filepath.Join(t.TempDir(), "hooks.log")
	hook := func(name string) map[string]any {
		return map[string]any{"path": "/bin/sh", "args": []any{"sh", "-c", `read s; echo "` + name + ` $s" >> ` + log}, "timeout": 5}
	}
	b := ociBundle(t, []string{"true"}, func(m map[string]any) {
		m["hooks"] = map[string]any{"prestart": []any{hook("prestart")}, "createRuntime": []any{hook("createRuntime")},
			"poststart": []any{hook("poststart")}, "poststop": []any{hook("poststop")}}
	})
	id := "hooks" + strconv.Itoa(os.Getpid())
	if r := oci(t, b, "", "create", "--bundle", b, id); r.code != 0 {
		t.Fatalf("create: %d %s", r.code, r.stderr)
	}
	_, pid := ociStatus(t, b, id)
	oci(t, b, "", "start", id)
	waitStatus(t, b, id, "stopped")
	if r := oci(t, b, "", "delete", id); r.code != 0 {
		t.Fatalf("delete: %d %s", r.code, r.stderr)
	}
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		name, state, _ := strings.Cut(line, " ")
		order = append(order, name)
		var st struct {
			ID     string `json:"id"`
			Pid    int    `json:"pid"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal([]byte(state), &st); err != nil || st.ID != id {
			t.Errorf("%s hook got state %q: %v", name, state, err)
		}
		if name == "prestart" && (st.Pid != pid || st.Status != "created") {
			t.Errorf("prestart state: pid %d status %s, want %d created", st.Pid, st.Status, pid)
		}
	}
	if got := strings.Join(order, " "); got != "prestart createRuntime poststart poststop" {
		t.Errorf("hooks ran: %s", got)
	}
}

// TestOCICgroupRefusals, on a host that delegates no cgroup2 subtree with
// the memory controller to the test user (this one: cgroup v1 hybrid; the
// VM lane's oci-* cases run the same commands where it does):
//   - create with a memory limit refuses in one line with 125 and leaves
//     nothing (no state, no process);
//   - a container without a cgroup of its own cannot be paused or updated:
//     a clear error, non-zero, its state unchanged; resume says it is not
//     paused;
//   - a cgroupsPath without limits is tolerated: the container runs, its
//     report says it has no cgroup of its own.
func TestOCICgroupRefusals(t *testing.T) {
	t.Run("memory-limit", func(t *testing.T) {
		b := ociBundle(t, []string{"sleep", "6023"}, func(m map[string]any) {
			m["linux"].(map[string]any)["resources"] = map[string]any{"memory": map[string]any{"limit": 64 << 20}}
		})
		id := "cgmem" + strconv.Itoa(os.Getpid())
		r := oci(t, b, "", "create", "--bundle", b, id)
		if r.code == 0 {
			oci(t, b, "", "delete", "--force", id)
			t.Skip("this host enforces the memory limit (a delegated cgroup2 memory controller); the VM lane covers it")
		}
		if r.code != exitWarden || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 ||
			!strings.Contains(r.stderr, "warden-oci: create: linux.resources asks for limits (memory, memory-swap) that cannot be enforced here: ") {
			t.Errorf("create: %d, want %d and one line naming the limits:\n%s", r.code, exitWarden, r.stderr)
		}
		if r := oci(t, b, "", "state", id); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
			t.Errorf("state after a refused create: %d %s", r.code, r.stderr)
		}
		if procs := findProc(t, "sleep 6023"); len(procs) > 0 {
			t.Errorf("processes left: %v", procs)
		}
	})

	t.Run("no-leaf", func(t *testing.T) {
		b := ociBundle(t, []string{"sleep", "6029"}, nil)
		id := "cgnone" + strconv.Itoa(os.Getpid())
		if r := oci(t, b, "", "create", "--bundle", b, id); r.code != 0 {
			t.Fatalf("create: %d %s", r.code, r.stderr)
		}
		defer oci(t, b, "", "delete", "--force", id)
		oci(t, b, "", "start", id)
		waitStatus(t, b, id, "running")
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"pause", id}, `pause: container "` + id + `" has no cgroup of its own`},
			{[]string{"update", "--pids-limit", "10", id}, `update: container "` + id + `" has no cgroup of its own`},
			{[]string{"update", "--resources", "-", id}, `update: container "` + id + `" has no cgroup of its own`},
			{[]string{"resume", id}, "container not paused"},
		} {
			stdin := ""
			if tc.args[len(tc.args)-2] == "-" {
				stdin = `{"memory": {"limit": 1000000}}`
			}
			r := oci(t, b, stdin, tc.args...)
			if r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%v: %d, want an error with %q:\n%s", tc.args, r.code, tc.want, r.stderr)
			}
			if s, _ := ociStatus(t, b, id); s != "running" {
				t.Errorf("after %v: state %q, want running", tc.args, s)
			}
		}
		// An unknown update flag is a usage error (125), before anything.
		if r := oci(t, b, "", "update", "--cpu-share", "100", id); r.code != exitWarden || !strings.Contains(r.stderr, "unknown flag: --cpu-share") {
			t.Errorf("update --cpu-share: %d %s", r.code, r.stderr)
		}
	})

	t.Run("cgroups-path", func(t *testing.T) {
		b := ociBundle(t, []string{"true"}, func(m map[string]any) {
			m["linux"].(map[string]any)["cgroupsPath"] = "/warden-test/c1"
		})
		id := "cgpath" + strconv.Itoa(os.Getpid())
		if r := oci(t, b, "", "create", "--bundle", b, id); r.code != 0 {
			t.Fatalf("create with a cgroupsPath and no limits: %d %s", r.code, r.stderr)
		}
		defer func() {
			if r := oci(t, b, "", "delete", "--force", id); r.code != 0 {
				t.Errorf("delete: %d %s", r.code, r.stderr)
			}
		}()
		r := oci(t, b, "", "report", id)
		if !strings.Contains(r.stdout, "no cgroup of its own: config.json names a cgroupsPath") {
			if strings.Contains(r.stdout, `"cgroup": {`) {
				t.Skip("this host gave the container a cgroup of its own")
			}
			t.Errorf("report does not say the container has no cgroup:\n%s", r.stdout)
		}
		if !strings.Contains(r.stdout, `"name": "limit.memory",`+"\n"+`      "state": "off"`) {
			t.Errorf("report lacks limit.memory off:\n%s", r.stdout)
		}
	})
}
