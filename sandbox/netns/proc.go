package netns

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
)

// parseNetDev sums the receive and transmit bytes of every interface but lo
// in a /proc/net/dev table.
func parseNetDev(data []byte) (rx, tx uint64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 0; sc.Scan(); line++ {
		if line < 2 { // two header lines
			continue
		}
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			return 0, 0, fmt.Errorf("line %d: no interface name", line+1)
		}
		if strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			return 0, 0, fmt.Errorf("line %d: %d fields, want 16", line+1, len(f))
		}
		r, err1 := strconv.ParseUint(f[0], 10, 64)
		t, err2 := strconv.ParseUint(f[8], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, 0, fmt.Errorf("line %d: bad byte counts %q %q", line+1, f[0], f[8])
		}
		rx += r
		tx += t
	}
	return rx, tx, sc.Err()
}

// hasDefaultRoute reports whether the netns of pid has an IPv4 or IPv6
// default route through an interface other than lo.
func hasDefaultRoute(pid int) (bool, error) {
	if gw, err := defaultGateway4(pid); err != nil || gw != "" {
		return gw != "", err
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/ipv6_route", pid))
	if err != nil {
		return false, fmt.Errorf("read jail routes: %w", err)
	}
	return hasDefault6(data), nil
}

// defaultGateway4 returns the gateway of the IPv4 default route in the netns
// of pid, "" if there is none yet.
func defaultGateway4(pid int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/route", pid))
	if err != nil {
		return "", fmt.Errorf("read jail routes: %w", err)
	}
	return parseRoute4(data), nil
}

// parseRoute4 finds the default route in a /proc/net/route table; the
// kernel prints each address as the hex of its 4 bytes loaded as a
// native-endian word.
func parseRoute4(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[0] == "lo" || f[1] != "00000000" || f[7] != "00000000" {
			continue
		}
		v, err := strconv.ParseUint(f[2], 16, 32)
		if err != nil {
			continue
		}
		var ip [4]byte
		binary.NativeEndian.PutUint32(ip[:], uint32(v))
		return netip.AddrFrom4(ip).String()
	}
	return ""
}

// hasDefault6 finds ::/0 through a non-lo interface in /proc/net/ipv6_route.
func hasDefault6(data []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 10 && f[0] == strings.Repeat("0", 32) && f[1] == "00" && f[9] != "lo" {
			return true
		}
	}
	return false
}

// gateway is the jail's IPv4 default gateway, where pasta maps the host's
// loopback when --no-map-gw is not given.
func (h *Helper) gateway() string {
	gw, _ := defaultGateway4(h.jailPID)
	return gw
}

// hostListening reports whether every published TCP port is listened on in
// warden's own network namespace (UDP sockets are bound at pasta's start,
// before it touches the jail, so only TCP needs the wait).
func hostListening(ports []Port) (bool, error) {
	var tables []byte
	for _, name := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		data, err := os.ReadFile(name)
		if err != nil && !os.IsNotExist(err) {
			return false, fmt.Errorf("read %s: %w", name, err)
		}
		tables = append(tables, data...)
	}
	listening := listeningPorts(tables)
	for _, p := range ports {
		if p.Proto == "tcp" && !listening[p.HostPort] {
			return false, nil
		}
	}
	return true, nil
}

// listeningPorts collects local ports in state LISTEN (0A) from
// /proc/net/tcp{,6} tables.
func listeningPorts(data []byte) map[int]bool {
	out := map[int]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != "0A" {
			continue
		}
		_, port, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(port, 16, 16); err == nil {
			out[int(n)] = true
		}
	}
	return out
}

// tailBuffer keeps the last max bytes written to it: a helper's stderr,
// for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(dropSyslogNoise(t.buf))
}
