package netns

import (
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
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
			sink := jailCmd(t, jail.Process.Pid, "sink 9000")
			out, err := sink.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := sink.Start(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 6)
			io.ReadFull(out, buf) // "ready\n"
			d := sendFromTestHost(t, fmt.Sprintf("%s:%d", worldAddr, port), size)
			rest, _ := io.ReadAll(out)
			sink.Wait()
			rx, _, _ := h.Counters()
			t.Logf("bench: %s 1GiB sender %.3fs %.2f Gbit/s; jail sink: %s; jail rx counter %d bytes",
				mode, d.Seconds(), size*8/d.Seconds()/1e9, strings.TrimSpace(string(rest)), rx)
			if !strings.Contains(string(rest), fmt.Sprintf("bytes=%d ", size)) {
				t.Errorf("jail sink got %q; want all %d bytes", rest, size)
			}
		})
	}
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
