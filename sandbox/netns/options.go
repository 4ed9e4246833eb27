package netns

import (
	"errors"
	"fmt"
)

// Mode names a network mode.
type Mode string

// The network modes. ModeNone is the default.
const (
	ModeNone  Mode = "none"
	ModeHost  Mode = "host"
	ModePasta Mode = "pasta"
	ModeSlirp Mode = "slirp4netns"
	ModeAuto  Mode = "auto"
)

// ParseMode checks a mode name from a flag or a policy; "" means none.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "":
		return ModeNone, nil
	case ModeNone, ModeHost, ModePasta, ModeSlirp, ModeAuto:
		return m, nil
	}
	return "", fmt.Errorf("network mode %q: want none, host, pasta, slirp4netns or auto", s)
}

// usesHelper reports whether the mode runs a helper binary.
func (m Mode) usesHelper() bool { return m == ModePasta || m == ModeSlirp || m == ModeAuto }

// DefaultMTU is the MTU of the jail's interface when Options.MTU is 0. 65520
// is pasta's default; slirp4netns defaults to 1500, which costs it most of
// its throughput (0.84 against 6.2 Gbit/s in rootlesskit's measurements).
const DefaultMTU = 65520

// Options say how to network one jail.
type Options struct {
	Mode    Mode
	Publish []Port
	// AllowHostLoopback lets the jail reach the host's 127.0.0.1 and ::1
	// through the helper's gateway address (Info.HostLoopbackAddr).
	AllowHostLoopback bool
	// MTU of the jail's interface; 0 means DefaultMTU.
	MTU int
	// StateDir holds the slirp4netns API socket. Empty: a private
	// directory under os.TempDir(), removed by Stop. The socket path must
	// fit in sun_path (107 bytes).
	StateDir string
}

// Validate checks o without looking at the host. sandbox.Resolve calls it,
// so that a bad flag fails before anything is created.
func (o Options) Validate() error {
	if _, err := ParseMode(string(o.Mode)); err != nil {
		return err
	}
	if o.MTU != 0 && (o.MTU < 1280 || o.MTU > 65520) {
		return fmt.Errorf("network mtu %d: want 1280-65520", o.MTU)
	}
	if len(o.Publish) > 0 && !o.Mode.usesHelper() {
		return fmt.Errorf("publish %s: needs --net pasta, slirp4netns or auto, not %s", o.Publish[0], o.modeName())
	}
	seen := map[string]bool{}
	for _, p := range o.Publish {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("publish %s: %w", p, err)
		}
		key := fmt.Sprintf("%s/%d/%s", p.HostIP, p.HostPort, p.Proto)
		if seen[key] {
			return fmt.Errorf("publish %s: host port given twice", p)
		}
		seen[key] = true
	}
	if o.AllowHostLoopback && !o.Mode.usesHelper() {
		return fmt.Errorf("allow_host_loopback: needs --net pasta, slirp4netns or auto, not %s", o.modeName())
	}
	return nil
}

func (o Options) modeName() Mode {
	if o.Mode == "" {
		return ModeNone
	}
	return o.Mode
}

func (o Options) mtu() int {
	if o.MTU == 0 {
		return DefaultMTU
	}
	return o.MTU
}

// Warning is a degradation the caller must show (sandbox logs it at warn).
type Warning struct {
	Message string `json:"message"`
}

// Error is a setup failure with the host-side fix. sandbox.Diagnose prints
// Hint as a "hint:" line.
type Error struct {
	Op   string // "find pasta", "start slirp4netns", ...
	Err  error
	Hint string
}

func (e *Error) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Hints is the fix, for sandbox.Diagnose (nil when there is none).
func (e *Error) Hints() []string {
	if e.Hint == "" {
		return nil
	}
	return []string{e.Hint}
}

// ErrHelperNotFound is wrapped by the error Detect returns when the helper
// binary is not installed.
var ErrHelperNotFound = errors.New("network helper not found")

// Info describes the network of a jail for the run report.
type Info struct {
	Mode      Mode   `json:"mode"`
	Helper    string `json:"helper,omitempty"` // absolute path of the binary
	Version   string `json:"helper_version,omitempty"`
	HelperPID int    `json:"helper_pid,omitempty"`
	Published []Port `json:"published,omitempty"`
	// Forwarder says what forwards the published ports to the jail.
	Forwarder string `json:"forwarder,omitempty"`
	// DNS is the nameserver written to the jail's resolv.conf.
	DNS string `json:"dns,omitempty"`
	// HostLoopback says whether the host's loopback is reachable, and
	// HostLoopbackAddr at which address inside the jail.
	HostLoopback     bool      `json:"host_loopback"`
	HostLoopbackAddr string    `json:"host_loopback_addr,omitempty"`
	Unsafe           string    `json:"unsafe,omitempty"`
	Warnings         []Warning `json:"warnings,omitempty"`
}

// hostModeUnsafe is what the report says about --net host.
const hostModeUnsafe = "the jail shares the host's network namespace: host loopback services, " +
	"abstract unix sockets and every interface are reachable, and the jail can bind host ports"
