package netns

// Processes the tests run: the client that runs inside a jail (entered with
// nsenter), the "owner" that plays warden for the SIGKILL test, and the
// servers and the DNS responder the world offers.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rootless-containers/rootlesskit/v3/pkg/port/builtin"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port/builtin/opaque"
)

const (
	envClient = "WARDEN_NETNS_TEST_CLIENT"
	envOwner  = "WARDEN_NETNS_TEST_OWNER"
)

// clientMain runs one operation inside a jail and prints its result.
func clientMain() int {
	args := strings.Fields(os.Getenv(envClient))
	out, err := clientOp(args)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return 1
	}
	fmt.Println(out)
	return 0
}

func clientOp(args []string) (string, error) {
	const timeout = 2 * time.Second
	switch args[0] {
	case "dial": // dial tcp ADDR, print the server's banner line
		c, err := net.DialTimeout("tcp", args[1], timeout)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		line, err := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(line), err
	case "resolve": // resolve SERVER NAME through a DNS server
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return net.DialTimeout("udp", net.JoinHostPort(args[1], "53"), timeout)
		}}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		addrs, err := r.LookupHost(ctx, args[2])
		return strings.Join(addrs, ","), err
	case "unix": // dial an abstract unix socket
		c, err := net.DialTimeout("unix", "@"+args[1], timeout)
		if err != nil {
			return "", err
		}
		c.Close()
		return "connected", nil
	case "serve-tcp": // serve a banner on 0.0.0.0:PORT until killed
		ln, err := net.Listen("tcp", ":"+args[1])
		if err != nil {
			return "", err
		}
		fmt.Println("ready")
		serveBanner(ln, "jail", nil)
		return "", nil
	case "serve-udp": // echo "jail:" + datagram on PORT until killed
		pc, err := net.ListenPacket("udp", ":"+args[1])
		if err != nil {
			return "", err
		}
		fmt.Println("ready")
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return "", err
			}
			pc.WriteTo(append([]byte("jail:"), buf[:n]...), from)
		}
	case "sink": // sink PORT: accept one connection, count its bytes
		ln, err := net.Listen("tcp", ":"+args[1])
		if err != nil {
			return "", err
		}
		fmt.Println("ready")
		c, err := ln.Accept()
		if err != nil {
			return "", err
		}
		start := time.Now()
		n, err := io.Copy(io.Discard, c)
		d := time.Since(start)
		return fmt.Sprintf("bytes=%d seconds=%.3f gbit_per_s=%.2f", n, d.Seconds(), float64(n)*8/d.Seconds()/1e9), err
	case "builtin-child": // builtin-child SOCKET READYPIPE: rootlesskit's builtin port driver, child half
		d := builtin.NewChildDriver(os.Stderr)
		opaque := map[string]string{opaque.SocketPath: args[1], opaque.ChildReadyPipePath: args[2]}
		return "", d.RunChildDriver(opaque, make(chan struct{}), "")
	}
	return "", fmt.Errorf("unknown client op %q", args[0])
}

// serveBanner answers each connection with text and a newline.
func serveBanner(ln net.Listener, text string, accepted *atomic.Int32) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if accepted != nil {
			accepted.Add(1)
		}
		fmt.Fprintln(c, text)
		c.Close()
	}
}

// jailCmd returns the test binary, entered into the user and network
// namespaces of pid, set up to run op.
func jailCmd(t *testing.T, pid int, op string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", "--target", strconv.Itoa(pid), "--user", "--net", "--preserve-credentials", "--", exe)
	cmd.Env = append(os.Environ(), envClient+"="+op)
	return cmd
}

// inJail runs op inside the jail and returns its output, "error: ..." on failure.
func inJail(t *testing.T, pid int, op string) string {
	t.Helper()
	out, _ := jailCmd(t, pid, op).CombinedOutput()
	return strings.TrimSpace(string(out))
}

// serveInJail starts a server op in the jail and waits for its "ready".
func serveInJail(t *testing.T, pid int, op string) {
	t.Helper()
	cmd := jailCmd(t, pid, op)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("%s in jail: %q, %v", op, line, err)
	}
}

// newJail starts a jail-like target: a process in a new user and network
// namespace (caller mapped to 0) with lo up, as the jail's init would have it.
func newJail(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "ip link set lo up && exec sleep 100000")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start jail: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// gone reports whether pid no longer runs (a zombie counts as gone).
func gone(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && i+2 < len(data) && data[i+2] == 'Z'
}

func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if gone(pid) {
			return
		}
	}
	t.Errorf("%s (pid %d) still runs", what, pid)
}

// ownerMain plays warden for TestHelperDiesWithOwner: it starts a jail and
// a helper, prints "HELPERPID JAILPID" and waits to be killed.
func ownerMain() int {
	jail := exec.Command("/bin/sleep", "100000")
	jail.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := jail.Start(); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	h, err := Start(jail.Process.Pid, Options{Mode: Mode(os.Getenv(envOwner))})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println(h.Info().HelperPID, jail.Process.Pid)
	select {}
}

// dnsServer answers A queries for names in records on pc; it counts queries.
func dnsServer(pc net.PacketConn, records map[string]net.IP, queries *atomic.Int32) {
	buf := make([]byte, 512)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		queries.Add(1)
		if resp, err := dnsAnswer(buf[:n], records); err == nil {
			pc.WriteTo(resp, from)
		}
	}
}

// dnsAnswer builds the reply to one query (RFC 1035 4.1): the header with
// QR, RD, RA and NOERROR or NXDOMAIN, the question, and one A record.
func dnsAnswer(q []byte, records map[string]net.IP) ([]byte, error) {
	if len(q) < 12 {
		return nil, errors.New("short query")
	}
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil, errors.New("bad name")
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil, errors.New("short question")
	}
	question := q[12 : i+5]
	qtype := binary.BigEndian.Uint16(q[i+1:])
	name := strings.ToLower(strings.Join(labels, "."))
	ip, ok := records[name]
	resp := make([]byte, 12, 64)
	copy(resp, q[:2])
	flags := uint16(0x8180) // response, recursion desired+available
	var an uint16
	switch {
	case !ok:
		flags |= 3 // NXDOMAIN
	case qtype == 1:
		an = 1
	}
	binary.BigEndian.PutUint16(resp[2:], flags)
	binary.BigEndian.PutUint16(resp[4:], 1)
	binary.BigEndian.PutUint16(resp[6:], an)
	resp = append(resp, question...)
	if an == 1 {
		resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
		resp = append(resp, ip.To4()...)
	}
	return resp, nil
}
