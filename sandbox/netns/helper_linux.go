package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ReadyTimeout bounds the wait for a helper to configure the jail's interface.
var ReadyTimeout = 10 * time.Second

// Helper is a running network helper for one jail. A Helper for none or host
// runs nothing; its methods still work.
type Helper struct {
	info    Info
	jailPID int
	resolv  []byte

	cmd     *exec.Cmd
	exited  chan struct{} // closed once the helper has been reaped
	waitErr error         // valid after exited is closed
	stderr  *tailBuffer
	exitW   *os.File // slirp4netns --exit-fd, write end
	stopW   *os.File // closing it ends watchJail
	netdev  *os.File // the jail's /proc/PID/net/dev, opened at Start
	tmpDir  string   // private state dir, removed by Stop

	mu       sync.Mutex
	killed   bool // we sent the SIGKILL (Stop, or the jail ended)
	rx, tx   uint64
	stopOnce sync.Once
	stopErr  error
}

// Start connects the jail whose init has pid to the network, as o says.
// For pasta and slirp4netns it starts the helper against /proc/PID/ns/net
// (joining /proc/PID/ns/user), waits until the jail's interface has its
// default route, publishes o.Publish, and returns. The helper dies with
// warden (Pdeathsig from a locked thread), with the jail (a pidfd watch) and
// at Stop.
//
// Preconditions:
//   - pid is a child of the caller that has not been reaped, so the pid
//     cannot be reused while Start runs.
//   - The jail's ID maps are written (the helper enters its user namespace).
func Start(pid int, o Options) (*Helper, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	mode, f, err := Detect(o.Mode)
	if err != nil {
		return nil, err
	}
	h := &Helper{jailPID: pid, info: Info{Mode: mode}}
	switch mode {
	case ModeNone:
		return h, nil
	case ModeHost:
		h.info.Unsafe = hostModeUnsafe
		h.info.HostLoopback = true
		return h, nil
	}
	h.info.Helper, h.info.Version = f.Binary, f.Version
	h.info.HostLoopback = o.AllowHostLoopback
	if err := CheckTun(); err != nil {
		return nil, err
	}
	if h.netdev, err = os.Open(fmt.Sprintf("/proc/%d/net/dev", pid)); err != nil {
		return nil, fmt.Errorf("open jail netns of pid %d: %w", pid, err)
	}
	if err := h.start(mode, f, o); err != nil {
		h.Stop()
		return nil, err
	}
	return h, nil
}

func (h *Helper) start(mode Mode, f Features, o Options) error {
	pidfd, err := unix.PidfdOpen(h.jailPID, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open jail pid %d: %w", h.jailPID, err)
	}
	var p plan
	var readyR *os.File
	switch mode {
	case ModePasta:
		p, err = pastaPlan(f, h.jailPID, o, os.Geteuid(), os.Getegid())
	case ModeSlirp:
		var sock string
		if sock, err = h.apiSocketPath(o); err == nil {
			p, err = slirpPlan(f, h.jailPID, o, sock)
		}
	}
	if err != nil {
		unix.Close(pidfd)
		return err
	}
	h.info.DNS = p.dns
	h.info.Warnings = p.warnings
	h.resolv = []byte("nameserver " + p.dns + "\n")

	h.cmd = exec.Command(p.argv[0], p.argv[1:]...)
	h.cmd.Env = []string{"LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	h.stderr = &tailBuffer{max: 4096}
	h.cmd.Stderr = h.stderr
	h.cmd.WaitDelay = time.Second
	// SIGKILL, not SIGTERM: the helper holds no state worth flushing, and
	// a signal it can catch could be ignored by a confused helper.
	// Setpgid: a Ctrl-C on warden's terminal goes to the foreground
	// process group; the helper must not die before warden has shut the
	// jail down, so it gets a group of its own.
	h.cmd.SysProcAttr = &unix.SysProcAttr{Pdeathsig: unix.SIGKILL, Setpgid: true}
	var readyW, exitR *os.File
	if mode == ModeSlirp {
		if readyR, readyW, err = os.Pipe(); err != nil {
			unix.Close(pidfd)
			return fmt.Errorf("create ready pipe: %w", err)
		}
		defer readyR.Close()
		if exitR, h.exitW, err = os.Pipe(); err != nil {
			readyW.Close()
			unix.Close(pidfd)
			return fmt.Errorf("create exit pipe: %w", err)
		}
		h.cmd.ExtraFiles = []*os.File{readyW, exitR} // fds 3 and 4
	}
	err = h.startLocked()
	if readyW != nil {
		readyW.Close()
		exitR.Close()
	}
	if err != nil {
		unix.Close(pidfd)
		return &Error{Op: "start " + string(mode), Err: err, Hint: installHint[mode]}
	}
	h.info.HelperPID = h.cmd.Process.Pid
	stopR, stopW, err := os.Pipe()
	if err != nil {
		unix.Close(pidfd)
		return fmt.Errorf("create stop pipe: %w", err)
	}
	h.stopW = stopW
	go h.watchJail(pidfd, stopR)

	if mode == ModePasta {
		err = h.waitRoute()
	} else {
		err = h.waitReadyFD(readyR)
	}
	if err != nil {
		return h.startError(mode, err)
	}
	if mode == ModeSlirp {
		for _, port := range o.Publish {
			if err := slirpAddHostfwd(h.apiSocket(o), port); err != nil {
				return &Error{Op: "publish " + port.String(), Err: err,
					Hint: "is the host port free? (ss -lntup)"}
			}
		}
		if o.AllowHostLoopback {
			h.info.HostLoopbackAddr = slirpGateway
		}
	} else {
		if err := h.waitPublished(o.Publish); err != nil {
			return h.startError(mode, err)
		}
		if o.AllowHostLoopback {
			h.info.HostLoopbackAddr = h.gateway()
		}
	}
	h.info.Published = append([]Port(nil), o.Publish...)
	if len(o.Publish) > 0 {
		h.info.Forwarder = forwarder(mode)
	}
	return nil
}

// forwarder names what forwards the published ports, for the report.
func forwarder(mode Mode) string {
	if mode == ModeSlirp {
		return "slirp4netns, told by rootlesskit's slirp4netns port driver (add_hostfwd on its API socket)"
	}
	return "pasta's own forwarding (-t/-u)"
}

// startLocked starts h.cmd from a goroutine locked to its OS thread and
// reaps it there.
//
// We do this because PR_SET_PDEATHSIG fires when the thread that forked the
// child exits, not the process (prctl(2)); on an ordinary goroutine the Go
// runtime could retire that thread while the helper runs and kill it early.
// If warden dies, even by SIGKILL, every thread exits and the kernel sends
// the helper SIGKILL. After the reap we unlock rather than let the thread
// die with the goroutine: other children started on this thread earlier
// (the jail's init, say) may carry a Pdeathsig of their own.
func (h *Helper) startLocked() error {
	started := make(chan error, 1)
	h.exited = make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := h.cmd.Start(); err != nil {
			started <- err
			close(h.exited)
			return
		}
		started <- nil
		h.waitErr = h.cmd.Wait()
		close(h.exited)
	}()
	return <-started
}

// watchJail kills the helper when the jail's init exits: pasta holds the
// jail's namespace open and would otherwise run on.
func (h *Helper) watchJail(pidfd int, stopR *os.File) {
	defer unix.Close(pidfd)
	defer stopR.Close()
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}, {Fd: int32(stopR.Fd()), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if fds[0].Revents != 0 {
		h.kill()
	}
}

// kill takes the final counters and SIGKILLs the helper. The counters go
// first: the jail's interface is the helper's tap device, which vanishes
// with the helper's last fd.
func (h *Helper) kill() {
	h.mu.Lock()
	if h.netdev != nil && !h.killed {
		_ = h.readCountersLocked()
	}
	h.killed = true
	h.mu.Unlock()
	// Process.Kill goes through a pidfd: it cannot hit a reused pid.
	_ = h.cmd.Process.Kill()
}

// waitRoute waits until pasta has configured the jail: --config-net sets the
// link up, then the addresses, then the routes, so a default route through
// a non-loopback interface in /proc/PID/net/{route,ipv6_route} is the end.
func (h *Helper) waitRoute() error {
	return h.poll("configure the jail's interface", func() (bool, error) {
		return hasDefaultRoute(h.jailPID)
	})
}

// waitPublished waits until pasta listens on each published host port:
// pasta binds them at start, but not necessarily before it configures the
// jail, and a caller that connects right after Start must not see ECONNREFUSED.
func (h *Helper) waitPublished(ports []Port) error {
	if len(ports) == 0 {
		return nil
	}
	return h.poll("bind the published ports", func() (bool, error) {
		return hostListening(ports)
	})
}

func (h *Helper) poll(what string, done func() (bool, error)) error {
	deadline := time.Now().Add(ReadyTimeout)
	for sleep := 100 * time.Microsecond; ; sleep = min(2*sleep, 5*time.Millisecond) {
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-h.exited:
			return fmt.Errorf("exited before it could %s: %v", what, h.waitErr)
		case <-time.After(sleep):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("did not %s within %v", what, ReadyTimeout)
		}
	}
}

// waitReadyFD waits for slirp4netns to write to --ready-fd, which it does
// after it has configured tap0 (--configure).
func (h *Helper) waitReadyFD(r *os.File) error {
	if err := r.SetReadDeadline(time.Now().Add(ReadyTimeout)); err != nil {
		return fmt.Errorf("wait for ready-fd: %w", err)
	}
	var b [1]byte
	if _, err := r.Read(b[:]); err != nil {
		select {
		case <-h.exited:
			return fmt.Errorf("exited before it was ready: %v", h.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
		return fmt.Errorf("wait for ready-fd: %w", err)
	}
	return nil
}

func (h *Helper) startError(mode Mode, err error) error {
	msg := strings.TrimSpace(h.stderr.String())
	if msg != "" {
		err = fmt.Errorf("%w: %s", err, strings.ReplaceAll(msg, "\n", "; "))
	}
	return &Error{Op: "start " + string(mode), Err: err, Hint: startHint(mode, msg)}
}

// startHint maps a helper's complaint to the host-side fix.
func startHint(mode Mode, stderr string) string {
	switch {
	case strings.Contains(stderr, "setegid(0)") || strings.Contains(stderr, "seteuid(0)"):
		// slirp4netns becomes root of the jail's user namespace to create
		// its tap device; with a one-id map there is no root there.
		return "slirp4netns needs uid 0 mapped in the jail: use --map=auto (your /etc/subuid range) or --as-root, or --net pasta"
	case strings.Contains(stderr, "/dev/net/tun") || strings.Contains(stderr, "open tun"):
		return "the helper could not open /dev/net/tun: it must be crw-rw-rw- (chmod 0666 /dev/net/tun)"
	case strings.Contains(stderr, "user namespace") || strings.Contains(stderr, "setns"):
		return "the helper could not join the jail's namespaces; is it run by the jail's owner?"
	case strings.Contains(stderr, "route") || strings.Contains(stderr, "interface"):
		return string(mode) + " copies the host's default route; on a host without one use --net slirp4netns"
	}
	return "run it by hand to see more: " + string(mode) + " --help"
}

// CheckTun reports whether /dev/net/tun can be opened by this user; both
// helpers need it, opened from inside the jail's user namespace with the
// host's file permissions.
func CheckTun() error {
	if err := unix.Access("/dev/net/tun", unix.R_OK|unix.W_OK); err != nil {
		return &Error{Op: "access /dev/net/tun", Err: err,
			Hint: "network helpers need /dev/net/tun readable and writable by you: chmod 0666 /dev/net/tun (the usual mode), or modprobe tun"}
	}
	return nil
}

func (h *Helper) apiSocketPath(o Options) (string, error) {
	if o.StateDir == "" && len(o.Publish) > 0 {
		dir, err := os.MkdirTemp("", "warden-net-")
		if err != nil {
			return "", fmt.Errorf("create network state dir: %w", err)
		}
		h.tmpDir = dir
	}
	return h.apiSocket(o), nil
}

func (h *Helper) apiSocket(o Options) string {
	dir := o.StateDir
	if h.tmpDir != "" {
		dir = h.tmpDir
	}
	return filepath.Join(dir, "slirp4netns.sock")
}

// ResolvConf is the content for the jail's /etc/resolv.conf: the helper's
// DNS forwarder. nil for none (no DNS) and host (keep the host's file).
func (h *Helper) ResolvConf() []byte { return h.resolv }

// Info describes the network for the run report.
func (h *Helper) Info() Info { return h.info }

// Counters returns the bytes received and sent by the jail's interfaces
// (all but lo), from the jail's point of view. They stay readable after the
// jail has exited, until Stop, which keeps the last values. none and host
// report zero.
func (h *Helper) Counters() (rx, tx uint64, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.netdev == nil || h.killed {
		return h.rx, h.tx, nil
	}
	if err := h.readCountersLocked(); err != nil {
		return 0, 0, err
	}
	return h.rx, h.tx, nil
}

func (h *Helper) readCountersLocked() error {
	// The open file keeps a reference to the jail's netns (seq_open_net),
	// so this works after the jail's init is gone.
	buf := make([]byte, 16384)
	n, err := h.netdev.ReadAt(buf, 0)
	if err != nil && n == 0 {
		return fmt.Errorf("read jail /proc/%d/net/dev: %w", h.jailPID, err)
	}
	rx, tx, err := parseNetDev(buf[:n])
	if err != nil {
		return fmt.Errorf("read jail /proc/%d/net/dev: %w", h.jailPID, err)
	}
	h.rx, h.tx = rx, tx
	return nil
}

// Stop kills and reaps the helper, keeps the final counters and removes the
// private state dir. It is idempotent. It returns an error if the helper had
// failed on its own before it was stopped.
func (h *Helper) Stop() error {
	h.stopOnce.Do(func() { h.stopErr = h.stop() })
	return h.stopErr
}

func (h *Helper) stop() error {
	var errs []error
	if h.cmd != nil && h.cmd.Process != nil {
		early := false
		select {
		case <-h.exited:
			h.mu.Lock()
			early = !h.killed
			h.mu.Unlock()
		default:
			h.kill()
		}
		if h.exitW != nil {
			h.exitW.Close()
		}
		<-h.exited
		if early && h.waitErr != nil {
			errs = append(errs, fmt.Errorf("network helper %s failed during the run: %w: %s",
				h.info.Mode, h.waitErr, strings.TrimSpace(h.stderr.String())))
		}
	}
	h.mu.Lock()
	if h.netdev != nil {
		// kill took the final counters; a helper that exited on its own
		// took its tap device along, so there is nothing left to read.
		h.netdev.Close()
		h.netdev = nil
	}
	h.mu.Unlock()
	if h.stopW != nil {
		h.stopW.Close()
	}
	if h.tmpDir != "" {
		if err := os.RemoveAll(h.tmpDir); err != nil {
			errs = append(errs, fmt.Errorf("remove network state dir: %w", err))
		}
	}
	return errors.Join(errs...)
}
