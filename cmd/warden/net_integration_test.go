//go:build linux && integration

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hostServer listens on host loopback and counts connections; each gets
// the line HOST-LOOPBACK.
func hostServer(t *testing.T) (port int, hits func() int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln.Addr().(*net.TCPAddr).Port, serveLine(t, ln, "HOST-LOOPBACK")
}

// serveLine answers every connection to ln with line and counts them.
func serveLine(t *testing.T, ln net.Listener, line string) (hits func() int) {
	t.Cleanup(func() { ln.Close() })
	n := make(chan int, 1)
	n <- 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n <- (<-n + 1)
			c.Write([]byte(line + "\n"))
			c.Close()
		}
	}()
	return func() int { v := <-n; n <- v; return v }
}

func needHelper(t *testing.T, mode string) {
	if _, err := exec.LookPath(mode); err != nil {
		t.Skipf("%s not installed (scripts/setup.sh installs passt and slirp4netns)", mode)
	}
	if f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0); err != nil {
		t.Skipf("/dev/net/tun not usable by this user (%v); scripts/setup.sh sets the distribution default 0666", err)
	} else {
		f.Close()
	}
}

const connectPy = `
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 2)
    print(s.recv(100).decode().strip())
except Exception as e:
    print("blocked:", type(e).__name__)
`

// helperFor reports whether a helper is serving the jail with pid jail.
func helperFor(mode string, jail string) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if filepath.Base(args[0]) == mode && args[len(args)-1] == jail {
			return true
		}
	}
	return false
}

func TestNetNone(t *testing.T) {
	e := newEnv(t)
	port, hits := hostServer(t)
	// An abstract unix socket of the host: a jail in its own network
	// namespace must not reach it (abstract names are per netns).
	name := fmt.Sprintf("@warden-test-%d", os.Getpid())
	ul, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	serveLine(t, ul, "ABSTRACT")
	script := connectPy + fmt.Sprintf(`
try:
    u = socket.socket(socket.AF_UNIX); u.connect("\0%s"); print(u.recv(100).decode().strip())
except Exception as e:
    print("abstract blocked:", type(e).__name__)
`, strings.TrimPrefix(name, "@"))
	r := e.run(t, nil, "run", "--", "python3", "-c", script, "127.0.0.1", fmt.Sprint(port))
	if strings.Contains(r.stdout, "HOST-LOOPBACK") || strings.Contains(r.stdout, "ABSTRACT") || hits() != 0 {
		t.Errorf("--net none reached the host: %q %q", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "abstract blocked") {
		t.Errorf("abstract socket test did not run: %q %q", r.stdout, r.stderr)
	}
}

func TestNetHelpers(t *testing.T) {
	for _, mode := range []string{"pasta", "slirp4netns"} {
		t.Run(mode, func(t *testing.T) {
			needHelper(t, mode)
			e := newEnv(t)
			// slirp4netns needs a mapped root in the jail (it becomes root
			// there to create its tap): with an explicit one-id map warden
			// refuses with the fix; with the default map it takes the
			// caller's subuid range (scripts/setup.sh gives the test user
			// one); --as-root provides one too.
			netArgs := []string{"--net", mode}
			if mode == "slirp4netns" {
				r := e.run(t, nil, "run", "--net", mode, "--map", "single", "--", "true")
				if r.code != 125 || !strings.Contains(r.stderr, "needs uid 0 mapped") {
					t.Errorf("slirp4netns with --map single: exit %d %q, want 125 naming the fix", r.code, r.stderr)
				}
				r = e.run(t, nil, "run", "--net", mode, "--", "sh", "-c", "wc -l < /proc/self/uid_map")
				if r.code != 0 || strings.TrimSpace(r.stdout) == "1" {
					t.Errorf("slirp4netns with the default map: exit %d stdout %q stderr %q; want the subuid range mapped", r.code, r.stdout, r.stderr)
				}
				netArgs = append(netArgs, "--as-root")
			}
			port, hits := hostServer(t)
			rep := filepath.Join(t.TempDir(), "r.json")
			r := e.run(t, nil, append(append([]string{"run"}, netArgs...), "--report", rep, "--", "sh", "-c",
				fmt.Sprintf("cat /etc/resolv.conf; python3 -c '%s' 127.0.0.1 %d", connectPy, port))...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if strings.Contains(r.stdout, "HOST-LOOPBACK") || hits() != 0 {
				t.Errorf("host loopback reached under --net %s: %q", mode, r.stdout)
			}
			var doc struct {
				Network struct {
					Mode, Helper, DNS string
					HelperPID         int    `json:"helper_pid"`
					HostLoopback      bool   `json:"host_loopback"`
					HostLoopbackAddr  string `json:"host_loopback_addr"`
				} `json:"network"`
			}
			b, _ := os.ReadFile(rep)
			json.Unmarshal(b, &doc)
			if doc.Network.Mode != mode || doc.Network.Helper == "" || !strings.Contains(r.stdout, "nameserver "+doc.Network.DNS) {
				t.Errorf("report network %+v; resolv.conf inside: %q", doc.Network, r.stdout)
			}
			// The helper of this run (its pid is in the report) is gone.
			if doc.Network.HelperPID == 0 {
				t.Errorf("report has no helper_pid: %+v", doc.Network)
			} else if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", doc.Network.HelperPID)); err == nil && strings.Contains(string(b), mode) {
				t.Errorf("%s (pid %d) outlived its jail", mode, doc.Network.HelperPID)
			}

			// allow_host_loopback: the host's loopback is reachable at the
			// helper's gateway address.
			rep2 := filepath.Join(t.TempDir(), "r2.json")
			r = e.run(t, nil, append(append([]string{"run"}, netArgs...), "--allow-host-loopback", "--report", rep2, "--", "sh", "-c", "true")...)
			b, _ = os.ReadFile(rep2)
			json.Unmarshal(b, &doc)
			if doc.Network.HostLoopbackAddr == "" || !doc.Network.HostLoopback {
				t.Fatalf("allow_host_loopback: report %+v (%s)", doc.Network, r.stderr)
			}
			r = e.run(t, nil, append(append([]string{"run"}, netArgs...), "--allow-host-loopback", "--", "python3", "-c", connectPy,
				doc.Network.HostLoopbackAddr, fmt.Sprint(port))...)
			if !strings.Contains(r.stdout, "HOST-LOOPBACK") {
				t.Errorf("--allow-host-loopback: host loopback not reached at %s: %q %q", doc.Network.HostLoopbackAddr, r.stdout, r.stderr)
			}
		})
	}
}

func TestNetPublish(t *testing.T) {
	needHelper(t, "pasta")
	e := newEnv(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	hostPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(wardenBin(t), "run", "--net", "pasta", "-p", fmt.Sprintf("127.0.0.1:%d:8000", hostPort), "--",
		"python3", "-c", `
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8000)); s.listen(1); print("listening", flush=True)
c, _ = s.accept(); c.sendall(b"FROM-JAIL\n"); c.close()`)
	cmd.Dir, cmd.Env = e.cwd, e.env
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "listening") {
		t.Fatalf("server in the jail did not start: %q", line)
	}
	var got string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && got == "" {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", hostPort), time.Second)
		if err == nil {
			b := make([]byte, 64)
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, _ := c.Read(b)
			got = string(b[:n])
			c.Close()
		}
		if got == "" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !strings.Contains(got, "FROM-JAIL") {
		t.Errorf("published port 127.0.0.1:%d did not answer from the jail: %q", hostPort, got)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Error("warden did not exit after the server finished")
	}
}

func TestNetHelperDiesWithWarden(t *testing.T) {
	needHelper(t, "pasta")
	e := newEnv(t)
	cmd := exec.Command(wardenBin(t), "run", "--net", "pasta", "--", "sleep", "60")
	cmd.Dir, cmd.Env = e.cwd, e.env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// the jail's init is warden's child; pasta serves it by its pid.
	var jail string
	deadline := time.Now().Add(10 * time.Second)
	for jail == "" && time.Now().Before(deadline) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		for _, c := range strings.Fields(string(b)) {
			if helperFor("pasta", c) {
				jail = c
			}
		}
		if jail == "" {
			// warden's children may hang off another thread.
			ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", cmd.Process.Pid))
			for _, th := range ents {
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", cmd.Process.Pid, th.Name()))
				for _, c := range strings.Fields(string(b)) {
					if helperFor("pasta", c) {
						jail = c
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if jail == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("no pasta serving the jail appeared")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	deadline = time.Now().Add(3 * time.Second)
	alive := func(pid string) bool {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		return err == nil && !strings.Contains(string(b), ") Z ")
	}
	for (helperFor("pasta", jail) || alive(jail)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if helperFor("pasta", jail) {
		t.Errorf("after kill -9 of warden, the pasta serving jail pid %s is still running", jail)
	}
	if alive(jail) {
		t.Errorf("after kill -9 of warden, the jail's init (pid %s) is still running", jail)
	}
}

func TestNetHost(t *testing.T) {
	e := newEnv(t)
	port, hits := hostServer(t)
	rep := filepath.Join(t.TempDir(), "r.json")
	r := e.run(t, nil, "run", "--net", "host", "--report", rep, "--", "python3", "-c", connectPy, "127.0.0.1", fmt.Sprint(port))
	if !strings.Contains(r.stdout, "HOST-LOOPBACK") || hits() != 1 {
		t.Errorf("--net host did not share the host's network: %q %q", r.stdout, r.stderr)
	}
	b, _ := os.ReadFile(rep)
	if !strings.Contains(string(b), `"name": "network",`) || !strings.Contains(string(b), "unsafe") {
		t.Errorf("report does not mark host networking unsafe:\n%s", b)
	}
}
