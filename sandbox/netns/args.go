package netns

import (
	"errors"
	"fmt"
	"strconv"
)

// Addresses the helpers serve inside the jail.
const (
	// pastaDNS is the address pasta's --dns-forward answers on; queries
	// sent there go to the host's first nameserver, from the host side (so
	// a host resolver on 127.0.0.53 works without opening host loopback).
	// 169.254.1.1 is link-local, never a real upstream, and podman uses it too.
	pastaDNS = "169.254.1.1"
	// slirp4netns's fixed addresses in its default 10.0.2.0/24.
	slirpDNS     = "10.0.2.3"
	slirpGateway = "10.0.2.2"
	slirpJailIP  = "10.0.2.100"
	slirpIfName  = "tap0"
)

// File descriptor numbers slirp4netns gets through ExtraFiles.
const (
	slirpReadyFD = 3
	slirpExitFD  = 4
)

// plan is the launch of one helper, decided before anything runs.
type plan struct {
	argv     []string
	dns      string
	warnings []Warning
}

// pastaPlan builds the pasta command line for the jail whose init is pid.
// euid and egid are warden's.
func pastaPlan(f Features, pid int, o Options, euid, egid int) (plan, error) {
	p := plan{dns: pastaDNS, argv: []string{f.Binary,
		"--config-net",
		// We keep pasta in the foreground as our child, so that the
		// Pdeathsig we set reaches it; daemonized, it would outlive a
		// SIGKILLed warden.
		"--foreground", "--quiet",
		"--mtu", strconv.Itoa(o.mtu()),
	}}
	if euid == 0 {
		// pasta started as root drops to "nobody" before it opens
		// /proc/PID/ns/user, and nobody may not open it; run it as the
		// caller, which is what the jail's owner is.
		if !f.Has("--runas") {
			return plan{}, missingFlag(ModePasta, f, "--runas", "needed when warden runs as root")
		}
		p.argv = append(p.argv, "--runas", fmt.Sprintf("%d:%d", euid, egid))
	}
	if !f.Has("--dns-forward") {
		return plan{}, missingFlag(ModePasta, f, "--dns-forward", "needed for DNS in the jail")
	}
	p.argv = append(p.argv, "--dns-forward", pastaDNS)
	if !o.AllowHostLoopback {
		// Without --no-map-gw pasta translates connections to the gateway
		// address into connections to the host's 127.0.0.1 / ::1.
		if !f.Has("--no-map-gw") {
			return plan{}, missingFlag(ModePasta, f, "--no-map-gw", "needed to keep host loopback unreachable")
		}
		p.argv = append(p.argv, "--no-map-gw")
	}
	for _, port := range o.Publish {
		// Measured on pasta 2023_03_09 (Debian 12): a datagram to a
		// published UDP port whose host and jail numbers differ reaches
		// the jail, but the reply never reaches the host. Same numbers work.
		if port.Proto == "udp" && port.HostPort != port.JailPort && !pastaAfter2023(f.Version) {
			return plan{}, &Error{Op: "publish " + port.String(),
				Err:  fmt.Errorf("pasta %s loses the replies of UDP ports published under another number", f.Version),
				Hint: fmt.Sprintf("publish UDP with the same number on both sides (%d:%d/udp), or upgrade passt", port.JailPort, port.JailPort)}
		}
	}
	p.argv = append(p.argv, pastaPorts("-t", "tcp", o.Publish)...)
	p.argv = append(p.argv, pastaPorts("-u", "udp", o.Publish)...)
	// -T/-U default to "auto": pasta then binds the jail's own loopback
	// ports that are bound on the host's loopback and forwards them to the
	// host, so the jail's 127.0.0.1:5432 would be the host's database.
	p.argv = append(p.argv, "-T", "none", "-U", "none", strconv.Itoa(pid))
	return p, nil
}

// pastaPorts renders published ports as pasta specs "ADDR/HOSTPORT:JAILPORT";
// with none it says "none", because pasta's default "auto" would publish
// every port the jail binds, on all host addresses.
func pastaPorts(flag, proto string, ports []Port) []string {
	var out []string
	for _, p := range ports {
		if p.Proto == proto {
			out = append(out, flag, fmt.Sprintf("%s/%d:%d", p.HostIP, p.HostPort, p.JailPort))
		}
	}
	if out == nil {
		out = []string{flag, "none"}
	}
	return out
}

// slirpPlan builds the slirp4netns command line. The ready pipe is fd 3 and
// the exit pipe fd 4; apiSocket is used only when ports are published.
func slirpPlan(f Features, pid int, o Options, apiSocket string) (plan, error) {
	p := plan{dns: slirpDNS, argv: []string{f.Binary,
		"--configure",
		"--mtu=" + strconv.Itoa(min(o.mtu(), 65520)),
		"--ready-fd=" + strconv.Itoa(slirpReadyFD),
		"--exit-fd=" + strconv.Itoa(slirpExitFD),
	}}
	if !o.AllowHostLoopback {
		// Otherwise 10.0.2.2 is NAT'd to the host's 127.0.0.1.
		if !f.Has("--disable-host-loopback") {
			return plan{}, missingFlag(ModeSlirp, f, "--disable-host-loopback", "needed to keep host loopback unreachable")
		}
		p.argv = append(p.argv, "--disable-host-loopback")
	}
	if len(o.Publish) > 0 {
		if !f.Has("--api-socket") {
			return plan{}, missingFlag(ModeSlirp, f, "--api-socket", "needed to publish ports")
		}
		for _, port := range o.Publish {
			// Measured with slirp4netns 1.2.0 / libslirp 4.7.0: the jail's
			// reply to a forwarded datagram leaves as a new flow to
			// 10.0.2.2, the host's loopback, which --disable-host-loopback
			// drops. TCP is not affected.
			if port.Proto == "udp" && !o.AllowHostLoopback {
				return plan{}, &Error{Op: "publish " + port.String(),
					Err:  errors.New("slirp4netns cannot answer published UDP ports while host loopback is blocked"),
					Hint: "use --net pasta for UDP ports, or set allow_host_loopback = true"}
			}
			if !port.is4() {
				return plan{}, &Error{Op: "publish " + port.String(),
					Err:  errors.New("slirp4netns forwards only IPv4 host addresses"),
					Hint: "publish on an IPv4 host address, or use --net pasta"}
			}
		}
		p.argv = append(p.argv, "--api-socket="+apiSocket)
	}
	// The helper parses untrusted packets from the jail; confine it when
	// it can confine itself.
	if f.Has("--enable-sandbox") {
		p.argv = append(p.argv, "--enable-sandbox")
	} else {
		p.warnings = append(p.warnings, Warning{Message: "slirp4netns at " + f.Binary +
			" has no --enable-sandbox: the helper runs unconfined"})
	}
	if f.Has("--enable-seccomp") {
		p.argv = append(p.argv, "--enable-seccomp")
	}
	p.argv = append(p.argv, strconv.Itoa(pid), slirpIfName)
	return p, nil
}

func missingFlag(mode Mode, f Features, flag, why string) error {
	return &Error{Op: "plan " + string(mode),
		Err:  fmt.Errorf("%s %s does not support %s (%s)", f.Binary, f.Version, flag, why),
		Hint: "upgrade " + string(mode) + ", or choose the other helper with --net"}
}

// pastaAfter2023 reports whether a pasta version string names a release of
// 2024 or later ("2024_06_24.1ee2eca"). Debian's builds say "unknown".
func pastaAfter2023(version string) bool {
	return len(version) >= 4 && version[:4] >= "2024" && version[:4] <= "9999"
}
