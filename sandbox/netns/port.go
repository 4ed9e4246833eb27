package netns

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultHostIP is the host address a published port binds to when the
// specification names none. Loopback, because publishing on all interfaces
// is a decision the user must spell out ("0.0.0.0:8080:80").
const DefaultHostIP = "127.0.0.1"

// Port is one published port: connections to HostIP:HostPort on the host are
// forwarded to JailPort inside the jail.
type Port struct {
	HostIP   string `json:"host_ip"`
	HostPort int    `json:"host_port"`
	JailPort int    `json:"jail_port"`
	Proto    string `json:"proto"` // "tcp" or "udp"
}

// String renders p in the form ParsePort reads: "127.0.0.1:8080:80/tcp",
// "[::1]:8080:80/udp".
func (p Port) String() string {
	host := p.HostIP
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("%s:%d:%d/%s", host, p.HostPort, p.JailPort, p.Proto)
}

// ParsePort reads "[HOSTIP:]HOSTPORT:JAILPORT[/tcp|udp]". An IPv6 HOSTIP is
// written in brackets ("[::1]:8080:80"). HOSTIP defaults to 127.0.0.1 and the
// protocol to tcp.
func ParsePort(s string) (Port, error) {
	p := Port{HostIP: DefaultHostIP, Proto: "tcp"}
	rest := s
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		p.Proto = rest[i+1:]
		rest = rest[:i]
		if p.Proto != "tcp" && p.Proto != "udp" {
			return Port{}, fmt.Errorf("parse port %q: protocol %q is not tcp or udp", s, p.Proto)
		}
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]:")
		if end < 0 {
			return Port{}, fmt.Errorf("parse port %q: unterminated [ipv6] address", s)
		}
		p.HostIP = rest[1:end]
		rest = rest[end+2:]
		if !strings.Contains(p.HostIP, ":") {
			return Port{}, fmt.Errorf("parse port %q: brackets are for IPv6 addresses only", s)
		}
	} else if parts := strings.Split(rest, ":"); len(parts) == 3 {
		p.HostIP = parts[0]
		rest = parts[1] + ":" + parts[2]
	}
	ports := strings.Split(rest, ":")
	if len(ports) != 2 {
		return Port{}, fmt.Errorf("parse port %q: want [HOSTIP:]HOSTPORT:JAILPORT[/tcp|udp]", s)
	}
	var err error
	if p.HostPort, err = parsePortNumber(ports[0]); err != nil {
		return Port{}, fmt.Errorf("parse port %q: host port: %w", s, err)
	}
	if p.JailPort, err = parsePortNumber(ports[1]); err != nil {
		return Port{}, fmt.Errorf("parse port %q: jail port: %w", s, err)
	}
	if err := p.Validate(); err != nil {
		return Port{}, fmt.Errorf("parse port %q: %w", s, err)
	}
	return p, nil
}

func parsePortNumber(s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return int(n), nil
}

// Validate checks a Port built by hand (for example from a policy file).
func (p Port) Validate() error {
	addr, err := netip.ParseAddr(p.HostIP)
	if err != nil {
		return fmt.Errorf("host ip %q: not an IP address", p.HostIP)
	}
	if addr.Zone() != "" {
		return fmt.Errorf("host ip %q: zones are not supported", p.HostIP)
	}
	if p.HostPort < 1 || p.HostPort > 65535 {
		return fmt.Errorf("host port %d: out of range 1-65535", p.HostPort)
	}
	if p.JailPort < 1 || p.JailPort > 65535 {
		return fmt.Errorf("jail port %d: out of range 1-65535", p.JailPort)
	}
	if p.Proto != "tcp" && p.Proto != "udp" {
		return fmt.Errorf("protocol %q: not tcp or udp", p.Proto)
	}
	return nil
}

// is4 reports whether the host address is IPv4 (or IPv4-mapped IPv6).
func (p Port) is4() bool {
	a, err := netip.ParseAddr(p.HostIP)
	return err == nil && a.Unmap().Is4()
}
