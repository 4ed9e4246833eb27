package netns

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port/builtin"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port/builtin/opaque"
)

// TestBenchNet measures, in the private test network, a 1 GiB TCP transfer
// from the test host into a jail through a published port, and the time
// Start takes, for each helper. scripts/bench-net.sh runs it; it is skipped
// unless WARDEN_NETNS_BENCH=1.
func TestBenchNet(t *testing.T) {
	if os.Getenv("WARDEN_NETNS_BENCH") != "1" {
		t.Skip("benchmark: set WARDEN_NETNS_BENCH=1 (scripts/bench-net.sh)")
	}
	needHelper(t)
	const size = 1 << 30
	// Reference: the same transfer over the veth, test host -> world.
	ln := listenIn(t, 0, "tcp", worldAddr+":0")
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	d := sendFromTestHost(t, ln.Addr().String(), size)
	t.Logf("bench: veth-direct 1GiB %.3fs %.2f Gbit/s", d.Seconds(), size*8/d.Seconds()/1e9)

	for _, mode := range []Mode{ModePasta, ModeSlirp} {
		t.Run(string(mode), func(t *testing.T) {
			if _, _, err := Detect(mode); err != nil {
				t.Skipf("needs %s: %v", mode, err)
			}
			var starts []time.Duration
			for i := 0; i < 10; i++ {
				jail := newJail(t)
				t0 := time.Now()
				h, err := Start(jail.Process.Pid, Options{Mode: mode})
				if err != nil {
					t.Fatal(err)
				}
				starts = append(starts, time.Since(t0))
				h.Stop()
				jail.Process.Kill()
				jail.Wait()
			}
			sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
			t.Logf("bench: %s Start median %v (min %v, max %v, n=10)", mode, starts[5], starts[0], starts[9])

			jail := newJail(t)
			port := freePort(t, "tcp")
			h, err := Start(jail.Process.Pid, Options{Mode: mode,
				Publish: []Port{{HostIP: worldAddr, HostPort: port, JailPort: 9000, Proto: "tcp"}}})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Stop()
			d, rest := transferToJail(t, jail.Process.Pid, port, size)
			rx, _, _ := h.Counters()
			t.Logf("bench: %s 1GiB sender %.3fs %.2f Gbit/s; jail sink: %s; jail rx counter %d bytes",
				mode, d.Seconds(), size*8/d.Seconds()/1e9, rest, rx)
		})
	}
	t.Run("rootlesskit-builtin", func(t *testing.T) { benchBuiltinDriver(t, size) })
}

// benchBuiltinDriver is the same transfer through rootlesskit's builtin
// port driver (pkg/port/builtin), which rootless Docker uses by default: the
// parent half listens on the host side, the child half runs in the jail's
// user and network namespaces, dials the jail's port there and passes the
// connected socket back by SCM_RIGHTS; the parent then copies between the
// two kernel sockets. No user-mode TCP/IP stack is on the path, unlike
// slirp4netns's own add_hostfwd or pasta's -t.
func benchBuiltinDriver(t *testing.T, size int64) {
	jail := newJail(t)
	dir := t.TempDir()
	parent, err := builtin.NewParentDriver(os.Stderr, dir, false, "")
	if err != nil {
		t.Fatal(err)
	}
	o := parent.OpaqueForChild()
	child := jailCmd(t, jail.Process.Pid, "builtin-child "+o[opaque.SocketPath]+" "+o[opaque.ChildReadyPipePath])
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	initDone, quit := make(chan struct{}, 1), make(chan struct{})
	defer close(quit)
	errc := make(chan error, 1)
	go func() { errc <- parent.RunParentDriver(initDone, quit, nil) }()
	select {
	case <-initDone:
	case err := <-errc:
		t.Fatalf("builtin parent driver: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("builtin child driver never became ready")
	}
	hostPort := freePort(t, "tcp")
	st, err := parent.AddPort(context.Background(), port.Spec{Proto: "tcp", ParentIP: worldAddr, ParentPort: hostPort, ChildPort: 9000})
	if err != nil {
		t.Fatal(err)
	}
	defer parent.RemovePort(context.Background(), st.ID)
	d, rest := transferToJail(t, jail.Process.Pid, hostPort, size)
	t.Logf("bench: rootlesskit-builtin 1GiB sender %.3fs %.2f Gbit/s; jail sink: %s",
		d.Seconds(), float64(size)*8/d.Seconds()/1e9, rest)
}

// transferToJail starts a sink on port 9000 in the jail pid, sends size
// bytes to the published worldAddr:hostPort from the test host, and returns
// the sender's time and the sink's line; a sink that did not get every byte
// fails the test.
func transferToJail(t *testing.T, pid, hostPort int, size int64) (time.Duration, string) {
	t.Helper()
	sink := jailCmd(t, pid, "sink 9000")
	out, err := sink.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	io.ReadFull(out, buf) // "ready\n"
	d := sendFromTestHost(t, fmt.Sprintf("%s:%d", worldAddr, hostPort), size)
	rest, _ := io.ReadAll(out)
	sink.Wait()
	if !strings.Contains(string(rest), fmt.Sprintf("bytes=%d ", size)) {
		t.Errorf("jail sink got %q; want all %d bytes", rest, size)
	}
	return d, strings.TrimSpace(string(rest))
}

// sendFromTestHost connects from the test host's netns and writes n bytes.
func sendFromTestHost(t *testing.T, addr string, n int64) time.Duration {
	t.Helper()
	var c net.Conn
	if err := inNetns(testHostPID, func() (err error) { c, err = net.Dial("tcp", addr); return err }); err != nil {
		t.Fatalf("dial %s from test host: %v", addr, err)
	}
	buf := make([]byte, 1<<20)
	start := time.Now()
	for sent := int64(0); sent < n; sent += int64(len(buf)) {
		if _, err := c.Write(buf); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	c.Close()
	return time.Since(start)
}
