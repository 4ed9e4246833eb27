package netns

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(envClient) != "":
		os.Exit(clientMain())
	case os.Getenv(envOwner) != "":
		os.Exit(ownerMain())
	}
	flag.Parse()
	os.Exit(worldMain(m))
}

// servers are what the world offers, with counters of who got through.
type servers struct {
	loopPort int          // banner "host-loopback" on 127.0.0.1 and ::1
	loopHits atomic.Int32 // connections to it
	dnsHits  atomic.Int32
	abstract string // abstract unix socket in the world's netns
	unixHits atomic.Int32
}

const dnsName = "svc.warden.test"

func startServers(t *testing.T) *servers {
	t.Helper()
	s := &servers{}
	ln4 := listenIn(t, 0, "tcp4", "127.0.0.1:0")
	s.loopPort = ln4.Addr().(*net.TCPAddr).Port
	go serveBanner(ln4, "host-loopback", &s.loopHits)
	if ln6, err := net.Listen("tcp6", fmt.Sprintf("[::1]:%d", s.loopPort)); err == nil {
		t.Cleanup(func() { ln6.Close() })
		go serveBanner(ln6, "host-loopback", &s.loopHits)
	}
	go serveBanner(listenIn(t, testHostPID, "tcp", testHost+":8080"), "testhost", nil)
	pc := packetIn(t, testHostPID, testHost+":53")
	go dnsServer(pc, map[string]net.IP{dnsName: net.ParseIP(testHost)}, &s.dnsHits)
	s.abstract = fmt.Sprintf("warden-netns-test-%d", os.Getpid())
	ua := listenIn(t, 0, "unix", "@"+s.abstract)
	go func() {
		for {
			c, err := ua.Accept()
			if err != nil {
				return
			}
			s.unixHits.Add(1)
			c.Close()
		}
	}()
	return s
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func mustFail(t *testing.T, what, out string) {
	t.Helper()
	if !strings.HasPrefix(out, "error:") {
		t.Errorf("%s: got %q; want a failure", what, out)
	}
}

// TestHelperModes runs pasta and slirp4netns against a jail: outbound to
// the test host works, host loopback does not, DNS goes through the helper,
// published ports answer on the host, counters move, Stop kills.
func TestHelperModes(t *testing.T) {
	needHelper(t)
	s := startServers(t)
	for _, mode := range []Mode{ModePasta, ModeSlirp} {
		t.Run(string(mode), func(t *testing.T) {
			if _, _, err := Detect(mode); err != nil {
				t.Skipf("needs %s: %v", mode, err)
			}
			jail := newJail(t)
			pid := jail.Process.Pid
			tcpPort, udpPort := freePort(t, "tcp"), freePort(t, "udp")
			o := Options{Mode: mode, Publish: []Port{{HostIP: "127.0.0.1", HostPort: tcpPort, JailPort: 8080, Proto: "tcp"}}}
			udp := Port{HostIP: "127.0.0.1", HostPort: udpPort, JailPort: udpPort, Proto: "udp"}
			if mode == ModeSlirp {
				// slirp4netns cannot answer UDP with host loopback blocked.
				_, err := Start(pid, Options{Mode: mode, Publish: []Port{udp}})
				if err == nil || !strings.Contains(hintOf(err), "allow_host_loopback") {
					t.Errorf("Start(slirp4netns, udp publish) = %v (hint %q); want a refusal", err, hintOf(err))
				}
			} else {
				o.Publish = append(o.Publish, udp)
			}
			start := time.Now()
			h, err := Start(pid, o)
			if err != nil {
				t.Fatalf("Start: %v (hint: %s)", err, hintOf(err))
			}
			t.Logf("Start(%s) took %v; info %+v", mode, time.Since(start), h.Info())
			defer h.Stop()
			info := h.Info()
			if info.Mode != mode || info.HelperPID == 0 || info.HostLoopback || len(info.Published) != len(o.Publish) {
				t.Errorf("Info() = %+v", info)
			}
			// The report says what forwards the published ports.
			if want := map[Mode]string{ModePasta: "pasta", ModeSlirp: "rootlesskit"}[mode]; !strings.Contains(info.Forwarder, want) {
				t.Errorf("Info().Forwarder = %q, want it to name %s", info.Forwarder, want)
			}

			t.Run("reaches test host", func(t *testing.T) {
				if out := inJail(t, pid, "dial "+testHost+":8080"); out != "testhost" {
					t.Errorf("dial test host from jail = %q; want testhost", out)
				}
			})
			t.Run("host loopback unreachable", func(t *testing.T) {
				before := s.loopHits.Load()
				gw := blackhole
				if mode == ModeSlirp {
					gw = slirpGateway
				}
				for _, addr := range []string{"127.0.0.1", "[::1]", gw} {
					mustFail(t, "dial "+addr, inJail(t, pid, fmt.Sprintf("dial %s:%d", addr, s.loopPort)))
				}
				if got := s.loopHits.Load() - before; got != 0 {
					t.Errorf("host loopback server got %d connections from the jail", got)
				}
			})
			t.Run("abstract unix socket unreachable", func(t *testing.T) {
				mustFail(t, "abstract socket", inJail(t, pid, "unix "+s.abstract))
			})
			t.Run("dns", func(t *testing.T) {
				conf := string(h.ResolvConf())
				ns, ok := strings.CutPrefix(strings.TrimSpace(conf), "nameserver ")
				if !ok || ns != info.DNS {
					t.Fatalf("ResolvConf() = %q; want nameserver %s", conf, info.DNS)
				}
				before := s.dnsHits.Load()
				if out := inJail(t, pid, "resolve "+ns+" "+dnsName); out != testHost {
					t.Errorf("resolve %s via %s in jail = %q; want %s", dnsName, ns, out, testHost)
				}
				if s.dnsHits.Load() == before {
					t.Errorf("the test resolver saw no query")
				}
			})
			t.Run("published tcp", func(t *testing.T) {
				serveInJail(t, pid, "serve-tcp 8080")
				out, err := clientOp([]string{"dial", fmt.Sprintf("127.0.0.1:%d", tcpPort)})
				if err != nil || out != "jail" {
					t.Errorf("dial published 127.0.0.1:%d = %q, %v; want jail", tcpPort, out, err)
				}
			})
			t.Run("published udp", func(t *testing.T) {
				if mode == ModeSlirp {
					t.Skip("slirp4netns: UDP publishing needs allow_host_loopback (TestAllowHostLoopback covers it)")
				}
				checkUDP(t, pid, udp)
			})
			t.Run("counters", func(t *testing.T) {
				rx, tx, err := h.Counters()
				if err != nil || rx == 0 || tx == 0 {
					t.Errorf("Counters() = %d, %d, %v; want traffic both ways", rx, tx, err)
				}
			})
			t.Run("stop", func(t *testing.T) {
				rx, tx, _ := h.Counters()
				if err := h.Stop(); err != nil {
					t.Errorf("Stop() = %v", err)
				}
				waitGone(t, info.HelperPID, string(mode))
				if err := h.Stop(); err != nil {
					t.Errorf("second Stop() = %v", err)
				}
				if rx2, tx2, err := h.Counters(); err != nil || rx2 < rx || tx2 < tx {
					t.Errorf("Counters() after Stop = %d, %d, %v; want the last values (>= %d, %d)", rx2, tx2, err, rx, tx)
				}
				mustFail(t, "dial after Stop", inJail(t, pid, "dial "+testHost+":8080"))
			})
		})
	}
}

// TestAllowHostLoopback: with the option the host's 127.0.0.1 is reached at
// Info().HostLoopbackAddr, and the helper dies when the jail ends.
func TestAllowHostLoopback(t *testing.T) {
	needHelper(t)
	s := startServers(t)
	for _, mode := range []Mode{ModePasta, ModeSlirp} {
		t.Run(string(mode), func(t *testing.T) {
			if _, _, err := Detect(mode); err != nil {
				t.Skipf("needs %s: %v", mode, err)
			}
			jail := newJail(t)
			port := freePort(t, "udp")
			udp := Port{HostIP: "127.0.0.1", HostPort: port, JailPort: port, Proto: "udp"}
			h, err := Start(jail.Process.Pid, Options{Mode: mode, AllowHostLoopback: true, Publish: []Port{udp}})
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			defer h.Stop()
			info := h.Info()
			want := map[Mode]string{ModePasta: blackhole, ModeSlirp: slirpGateway}[mode]
			if !info.HostLoopback || info.HostLoopbackAddr != want {
				t.Errorf("Info() host loopback = %v at %q; want true at %q", info.HostLoopback, info.HostLoopbackAddr, want)
			}
			addr := fmt.Sprintf("%s:%d", info.HostLoopbackAddr, s.loopPort)
			if out := inJail(t, jail.Process.Pid, "dial "+addr); out != "host-loopback" {
				t.Errorf("dial %s from jail = %q; want host-loopback", addr, out)
			}
			if out := inJail(t, jail.Process.Pid, "dial "+testHost+":8080"); out != "testhost" {
				t.Errorf("dial test host = %q; want testhost", out)
			}
			checkUDP(t, jail.Process.Pid, udp)
			// The jail ends: the helper must follow, counters stay readable.
			jail.Process.Kill()
			jail.Wait()
			waitGone(t, info.HelperPID, string(mode)+" after the jail ended")
			if rx, tx, err := h.Counters(); err != nil || rx == 0 || tx == 0 {
				t.Errorf("Counters() after the jail ended = %d, %d, %v; want the traffic so far", rx, tx, err)
			}
			if err := h.Stop(); err != nil {
				t.Errorf("Stop() after the jail ended = %v; want nil (we killed it)", err)
			}
		})
	}
}

// TestModeNone: no helper; the jail reaches neither the test host, nor the
// host's loopback, nor an abstract unix socket of the host.
func TestModeNone(t *testing.T) {
	needWorld(t)
	s := startServers(t)
	jail := newJail(t)
	h, err := Start(jail.Process.Pid, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if info := h.Info(); info.Mode != ModeNone || info.HelperPID != 0 || h.ResolvConf() != nil {
		t.Errorf("Info() = %+v, ResolvConf() = %q; want none, no helper, no resolv.conf", info, h.ResolvConf())
	}
	pid := jail.Process.Pid
	mustFail(t, "test host", inJail(t, pid, "dial "+testHost+":8080"))
	mustFail(t, "host loopback", inJail(t, pid, fmt.Sprintf("dial 127.0.0.1:%d", s.loopPort)))
	mustFail(t, "abstract unix socket", inJail(t, pid, "unix "+s.abstract))
	if s.unixHits.Load() != 0 || s.loopHits.Load() != 0 {
		t.Errorf("host servers saw the jail: unix %d, loopback %d", s.unixHits.Load(), s.loopHits.Load())
	}
	// The abstract socket is there: from the world's netns it answers.
	if out, err := clientOp([]string{"unix", s.abstract}); err != nil || out != "connected" {
		t.Errorf("abstract socket from the host = %q, %v; the negative check above proves nothing", out, err)
	}
	if rx, tx, err := h.Counters(); err != nil || rx != 0 || tx != 0 {
		t.Errorf("Counters() = %d, %d, %v; want 0, 0, nil", rx, tx, err)
	}
	if err := h.Stop(); err != nil {
		t.Errorf("Stop() = %v", err)
	}
}

// TestHelperDiesWithOwner SIGKILLs a process that started a helper (as
// warden would be) and checks that the helper and the jail are gone.
func TestHelperDiesWithOwner(t *testing.T) {
	needHelper(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []Mode{ModePasta, ModeSlirp} {
		t.Run(string(mode), func(t *testing.T) {
			if _, _, err := Detect(mode); err != nil {
				t.Skipf("needs %s: %v", mode, err)
			}
			owner := exec.Command(exe)
			owner.Env = append(os.Environ(), envOwner+"="+string(mode))
			owner.Stderr = os.Stderr
			stdout, err := owner.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := owner.Start(); err != nil {
				t.Fatal(err)
			}
			line, _ := bufio.NewReader(stdout).ReadString('\n')
			var helper, jail int
			if _, err := fmt.Sscan(line, &helper, &jail); err != nil {
				owner.Process.Kill()
				owner.Wait()
				t.Fatalf("owner said %q", line)
			}
			if gone(helper) {
				t.Fatalf("helper %d not running before the kill", helper)
			}
			if err := owner.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			var ee *exec.ExitError
			if err := owner.Wait(); !errors.As(err, &ee) {
				t.Fatalf("owner wait = %v", err)
			}
			waitGone(t, helper, string(mode)+" after SIGKILL of its owner")
			waitGone(t, jail, "jail after SIGKILL of its owner")
		})
	}
}

func TestStartBadPid(t *testing.T) {
	needHelper(t)
	for _, mode := range []Mode{ModePasta, ModeSlirp} {
		t.Run(string(mode), func(t *testing.T) {
			if _, _, err := Detect(mode); err != nil {
				t.Skipf("needs %s: %v", mode, err)
			}
			// A pid that does not exist: the fd open fails before any helper runs.
			if h, err := Start(1<<22+1, Options{Mode: mode}); err == nil {
				h.Stop()
				t.Fatal("Start with a missing pid succeeded")
			}
		})
	}
}

// checkUDP serves UDP echo in the jail on p.JailPort and expects the reply
// through the published host port.
func checkUDP(t *testing.T, pid int, p Port) {
	t.Helper()
	serveInJail(t, pid, fmt.Sprintf("serve-udp %d", p.JailPort))
	c, err := net.Dial("udp", net.JoinHostPort(p.HostIP, fmt.Sprint(p.HostPort)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	var n int
	for try := 0; try < 5 && n == 0; try++ { // UDP: retry lost datagrams
		c.Write([]byte("ping"))
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, _ = c.Read(buf)
	}
	if got := string(buf[:n]); got != "jail:ping" {
		t.Errorf("published udp %s reply = %q; want jail:ping", p, got)
	}
}
