package netns

// The test world. Every test with traffic runs inside a network namespace
// of its own (and a mount namespace that replaces /etc/resolv.conf), so no
// packet can leave this machine whatever a helper does:
//
//	world netns ("the host")            testhost netns ("a remote host")
//	  lo: 127.0.0.1 servers               th0: 10.213.0.2 http, tcp, dns
//	  wh0: 10.213.0.1/24 ───── veth ───── th0
//	       10.213.1.1/24, default via 10.213.1.254 (nobody: a black hole)
//
// pasta copies the world's address and default route into the jail, so its
// gateway is 10.213.1.254, which is not the test host (with
// AllowHostLoopback pasta maps the gateway to the host's loopback). The
// world's /etc/resolv.conf says "nameserver 10.213.0.2": both helpers
// forward the jail's DNS to the resolver the test runs there.
//
// As root the world is CLONE_NEWNET|CLONE_NEWNS; otherwise it adds
// CLONE_NEWUSER with the caller mapped to 0.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	envWorld  = "WARDEN_NETNS_TEST_WORLD"
	testHost  = "10.213.0.2"
	worldAddr = "10.213.0.1"
	blackhole = "10.213.1.254"
)

// world is set up once in TestMain; worldErr says why it is not there.
var (
	worldErr    error
	testHostPID int
)

func worldMain(m *testing.M) int {
	if os.Getenv(envWorld) == "" {
		code, err := reexecInWorld()
		if err == nil {
			return code
		}
		worldErr = fmt.Errorf("create test world: %w", err)
		return m.Run()
	}
	cleanup, err := setupWorld()
	if err != nil {
		worldErr = fmt.Errorf("set up test world: %w", err)
	}
	code := m.Run()
	if cleanup != nil {
		cleanup()
	}
	return code
}

func reexecInWorld() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", envWorld, os.Getuid()))
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), nil
	}
	return 0, err
}

func setupWorld() (func(), error) {
	// rslave: our bind mount of resolv.conf must not propagate to the host.
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return nil, fmt.Errorf("make / rslave: %w", err)
	}
	dir, err := os.MkdirTemp("", "netns-world-")
	if err != nil {
		return nil, err
	}
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver "+testHost+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := unix.Mount(resolv, "/etc/resolv.conf", "", unix.MS_BIND, ""); err != nil {
		return nil, fmt.Errorf("bind resolv.conf: %w", err)
	}
	th := exec.Command("/bin/sleep", "100000")
	th.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := th.Start(); err != nil {
		return nil, fmt.Errorf("start test host: %w", err)
	}
	testHostPID = th.Process.Pid
	cleanup := func() { th.Process.Kill(); th.Wait(); os.RemoveAll(dir) }
	pid := fmt.Sprint(testHostPID)
	steps := [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "link", "add", "wh0", "type", "veth", "peer", "name", "th0", "netns", pid},
		{"ip", "addr", "add", worldAddr + "/24", "dev", "wh0"},
		{"ip", "addr", "add", "10.213.1.1/24", "dev", "wh0"},
		{"ip", "link", "set", "wh0", "up"},
		{"ip", "route", "add", "default", "via", blackhole, "dev", "wh0"},
		{"nsenter", "-t", pid, "-n", "ip", "link", "set", "lo", "up"},
		{"nsenter", "-t", pid, "-n", "ip", "addr", "add", testHost + "/24", "dev", "th0"},
		{"nsenter", "-t", pid, "-n", "ip", "link", "set", "th0", "up"},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			cleanup()
			return nil, fmt.Errorf("%s: %w: %s", strings.Join(s, " "), err, out)
		}
	}
	return cleanup, nil
}

// needWorld skips a test that sends traffic when the world is missing, or
// when this user cannot run a network helper.
func needWorld(t *testing.T) {
	t.Helper()
	if worldErr != nil {
		t.Skipf("needs a private test network (root, or unprivileged user namespaces): %v", worldErr)
	}
	if os.Getenv(envWorld) == "" {
		t.Skip("needs a private test network: not running inside it")
	}
}

// needHelper skips a test that runs a network helper when this user cannot
// open /dev/net/tun.
func needHelper(t *testing.T) {
	t.Helper()
	needWorld(t)
	if err := CheckTun(); err != nil {
		t.Skipf("needs /dev/net/tun usable by uid %s (chmod 0666 /dev/net/tun): %v", os.Getenv(envWorld), err)
	}
}

// inNetns runs fn on a thread that has joined the network namespace of pid.
func inNetns(pid int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: if switching back fails it must
		// die with the goroutine rather than serve others in a wrong netns.
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer self.Close()
		target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %d: %w", pid, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// listenIn listens on network/addr inside the netns of pid (0: here).
func listenIn(t *testing.T, pid int, network, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	listen := func() (err error) { ln, err = net.Listen(network, addr); return err }
	var err error
	if pid == 0 {
		err = listen()
	} else {
		err = inNetns(pid, listen)
	}
	if err != nil {
		t.Fatalf("listen %s %s in netns of %d: %v", network, addr, pid, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func packetIn(t *testing.T, pid int, addr string) net.PacketConn {
	t.Helper()
	var pc net.PacketConn
	err := inNetns(pid, func() (err error) { pc, err = net.ListenPacket("udp", addr); return err })
	if err != nil {
		t.Fatalf("listen udp %s in netns of %d: %v", addr, pid, err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}
