package sandbox

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox/cgroup"
	"github.com/warden-sandbox/warden/sandbox/jailprog"
	"github.com/warden-sandbox/warden/sandbox/mount"
	"github.com/warden-sandbox/warden/sandbox/netns"
	"github.com/warden-sandbox/warden/seccomp"
	"github.com/warden-sandbox/warden/userns"
)

// Usage is the payload's resource use, from wait4(2).
type Usage struct {
	UserUsec   int64 `json:"user_usec"`
	SystemUsec int64 `json:"system_usec"`
	MaxRSSKiB  int64 `json:"max_rss_kib"`
}

// Ending says how a run ended.
type Ending string

const (
	EndExit       Ending = "exit"
	EndSignal     Ending = "signal"
	EndTimeout    Ending = "timeout"
	EndSetupError Ending = "setup-error"
	// EndContainer: an OCI container's report, taken by `warden oci`,
	// which does not see the container end (its engine reaps it); the
	// kind is then the container's status: created, running, stopped.
	EndContainer Ending = "container"
)

// Endings detected from the cgroup's events.
const (
	EndOOM         Ending = "oom"
	EndPidsLimit   Ending = "pids-limit"
	EndSeccompKill Ending = "seccomp-kill"
)

// Result is the outcome of a run.
type Result struct {
	// Limits is the state of each cgroup limit ("enforced", "off",
	// "degraded: why"); Cgroup the cgroup's accounting when there was one.
	Limits   map[string]string
	Cgroup   *cgroup.Stats
	Warnings []Warning
	// Net describes the network mode and helper; NetRx/NetTx are the
	// bytes the jail's interface received and sent.
	Net          *netns.Info
	NetRx, NetTx uint64
	// Denials are the syscalls the seccomp profile denied (--seccomp-audit).
	Denials []seccomp.Denial
	Ending  Ending
	Code    int            // exit code when Ending is exit
	Signal  syscall.Signal // signal when Ending is signal (or the jail was killed)
	Usage   *Usage
	Wall    time.Duration
	// Overlays are the write-sets of the run's overlays, in plan order.
	Overlays []OverlayResult
	// Traces are what the command did in each traced directory, in plan
	// order.
	Traces []TraceResult
	// PayloadPid is the command's pid (in warden's pid namespace) of a
	// detached exec.
	PayloadPid int
}

// forwarded are the signals warden passes on to the payload. SIGTSTP and
// SIGCONT are among them so that job control aimed at warden (Ctrl-Z
// before the payload holds the terminal, `kill -TSTP`/`-CONT` of the job)
// reaches the payload rather than stopping warden alone.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGTSTP, syscall.SIGCONT}

// processStart is close to the process's start: package variables are
// initialised right after the runtime (--log-level debug logs phases on
// this clock; /proc/self/stat's start time is too coarse).
var processStart = time.Now()

// catching is the signal catching that CatchSignals starts and Run takes.
var catching struct {
	sync.Mutex
	sigs  chan os.Signal
	ready chan struct{}
}

// CatchSignals starts catching the signals Run passes on to the payload, in
// the background. signal.Notify hands each signal to the runtime's signal
// thread and waits for it to be enabled, about 2 ms here for nine signals,
// so warden's CLI calls CatchSignals first thing and nothing waits for it:
// a signal that arrives before it is enabled has its default action and
// ends warden, and with it the jail (PR_SET_PDEATHSIG). One caught before
// the payload exists reaches the payload once it has started.
func CatchSignals() {
	catching.Lock()
	defer catching.Unlock()
	if catching.sigs != nil {
		return
	}
	sigs, ready := make(chan os.Signal, 16), make(chan struct{})
	catching.sigs, catching.ready = sigs, ready
	go func() {
		signal.Notify(sigs, forwarded...)
		close(ready)
	}()
}

// takeSignals hands the caught signals' channel to the caller, and a stop
// function that ends the catching (once it has started); the next
// CatchSignals starts anew.
func takeSignals() (chan os.Signal, func()) {
	CatchSignals()
	catching.Lock()
	sigs, ready := catching.sigs, catching.ready
	catching.sigs, catching.ready = nil, nil
	catching.Unlock()
	return sigs, func() {
		<-ready
		signal.Stop(sigs)
	}
}

// gcPercent is the collector's setting before PauseGC, -1: not paused.
var gcPercent = -1

// PauseGC turns the garbage collector off until Run has started the
// payload: warden's start allocates little, and a collection in the middle
// of it costs more time than the memory is worth.
func PauseGC() {
	if gcPercent == -1 {
		gcPercent = debug.SetGCPercent(-1)
	}
}

func resumeGC() {
	if gcPercent != -1 {
		debug.SetGCPercent(gcPercent)
		gcPercent = -1
	}
}

// Run executes plan: it compiles the jail's programs, clones the jail's
// init into its new namespaces, writes the ID maps, attaches the network
// helper, lets init build the jail and start the payload, and then
// supervises the payload directly (signals, job control, timeout, audit).
// A setup failure inside the jail is returned as a *StageError.
func Run(p *Plan, logw io.Writer) (res *Result, err error) {
	l := &launch{p: p, logw: logw, start: time.Now(), payloadFD: -1}
	l.phase = l.tracer()
	l.phase("run")
	if err := preflightLayers(p); err != nil {
		return nil, err
	}
	if err := preflightTraces(p); err != nil {
		return nil, err
	}
	for _, d := range p.CacheDirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("cache directory: %w", err)
		}
	}
	if err := l.openSync(); err != nil {
		return nil, err
	}
	defer l.closeSync()
	p.Foreground = inForeground()
	if res, err := l.setupCgroup(); err != nil {
		return res, err
	}
	defer func() { leafNotRemoved(res, l.leaf.Remove(), logw) }()
	// What this jail will not enforce is said now, before the command
	// runs (a long job, or one killed, would otherwise never tell), and
	// once: the caller skips the warnings marked Printed.
	if logw != nil {
		for i, w := range l.res.Warnings {
			fmt.Fprintf(logw, "warden: warning: %s\n", w)
			l.res.Warnings[i].Printed = true
		}
	}
	// The caught signals' channel is taken before the jail exists: one
	// caught from now on reaches the payload once it runs. One that comes
	// before the runtime has enabled catching (CatchSignals) ends warden,
	// and the jail with it.
	sigs, stop := takeSignals()
	defer stop()
	if err := l.startInit(); err != nil {
		return nil, err
	}
	defer func() { l.ns.close() }()
	if err := l.configure(); err != nil {
		l.kill()
		return nil, err
	}
	defer l.net.Stop()
	defer l.closeUppers()
	res, err = l.supervise(sigs)
	l.overlayResults(res)
	// The jail's mount namespace, and with it the traced mounts, goes
	// once nothing holds it: the namespace server's fds are let go first.
	l.ns.close()
	l.traceResults(res)
	return res, err
}

// leafNotRemoved tells of a jail cgroup that Remove could not kill or
// remove (err from Leaf.Remove; nil: nothing to say): a warning now, on
// logw, and in the run's report when there is one.
func leafNotRemoved(res *Result, err error, logw io.Writer) {
	if err == nil {
		return
	}
	w := Warning{What: "jail cgroup left behind", Reason: err.Error() + "; kill what it holds and rmdir it", Printed: logw != nil}
	if logw != nil {
		fmt.Fprintf(logw, "warden: warning: %s\n", w)
	}
	if res != nil {
		res.Warnings = append(res.Warnings, w)
	}
}

// launch is one run in progress, the parent's side of jailprog's protocol.
type launch struct {
	p     *Plan
	logw  io.Writer
	start time.Time
	phase func(step string)

	// syncP is the parent's end of the sync socket, syncC the child's;
	// syncFile owns syncP once supervise polls it.
	syncP, syncC int
	syncFile     *os.File

	leaf  *cgroup.Leaf
	net   *netns.Helper
	child *jailprog.Child
	pid   int        // init's pid
	done  chan error // init reaped
	res   *Result

	// payloadFD is a pidfd of the payload (from "started"), payloadPid its
	// pid in warden's pid namespace (its process group too).
	payloadFD, payloadPid int
	resumes               int // SIGCONTs of warden's own resumes (jobStop) not yet seen by supervise
	// ns serves the jail's namespaces to warden exec (Plan.ExecSocket).
	ns *nsServer
	// exec: the child joins a running jail (Exec) instead of being its init.
	exec bool
	// uppers are the fds of the overlays' upper-layer tmpfs, by overlay
	// index (init's "notify").
	uppers map[int]int
	// traces serve the traced directories' FUSE mounts (init's "notify").
	traces traceServers
}

// tracer returns the phase logger: with --log-level debug, each phase is
// logged with the time since the process started (where startup time goes).
func (l *launch) tracer() func(string) {
	if l.p.LogLevel != "debug" || l.logw == nil {
		return func(string) {}
	}
	log := slog.New(slog.NewTextHandler(l.logw, &slog.HandlerOptions{Level: slog.LevelDebug})).With("stage", "parent")
	return func(step string) {
		log.Debug("phase", "step", step, "ms", float64(time.Since(processStart).Microseconds())/1000)
	}
}

func (l *launch) openSync() error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sync socket: %w", err)
	}
	l.syncP, l.syncC = fds[0], fds[1]
	return nil
}

func (l *launch) closeSync() {
	if l.syncFile != nil {
		l.syncFile.Close()
		l.syncFile, l.syncP = nil, -1
	}
	for _, fd := range []*int{&l.syncP, &l.syncC} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// setupCgroup makes the cgroup leaf on the host side, before any
// namespace: delegation is decided by the host's cgroup tree and the
// caller's credentials there (and a systemd scope is asked for over the
// caller's D-Bus, which would not authenticate from inside).
func (l *launch) setupCgroup() (*Result, error) {
	p := l.p
	leaf, cwarns, err := cgroup.Setup(p.Limits, p.LimitsMode, fmt.Sprintf("warden-%d", os.Getpid()))
	if err != nil {
		// The report still lists every requested limit, each off.
		refused := map[string]string{}
		for _, lim := range p.Limits.Requested() {
			refused[lim] = StateOff + ": refused before the run: " + err.Error()
		}
		return &Result{Ending: EndSetupError, Limits: refused, Wall: time.Since(l.start)}, err
	}
	l.leaf = leaf
	l.phase("cgroup")
	res := &Result{Ending: EndSignal, Signal: syscall.SIGKILL, Limits: leaf.Applied()}
	if w, ok := tiocstiExposed(p); ok {
		res.Warnings = append(res.Warnings, w)
	}
	// One warning per fix, naming every limit it would make enforced: the
	// fix is long and the same for each limit of one cause.
	type cause struct {
		limits, reasons []string
		fix             string
		pidsDegraded    bool
	}
	var causes []*cause
	for _, w := range cwarns {
		var c *cause
		for _, have := range causes {
			if have.fix == w.Fix {
				c = have
			}
		}
		if c == nil {
			c = &cause{fix: w.Fix}
			causes = append(causes, c)
		}
		c.limits = append(c.limits, w.Limit)
		if !slices.Contains(c.reasons, w.Reason) {
			c.reasons = append(c.reasons, w.Reason)
		}
		// best-effort: RLIMIT_NPROC is a fair stand-in for pids.max here,
		// because since Linux 5.14 it is counted per user namespace
		// (ucounts), so it counts the jail's tasks and nothing else.
		if w.Limit == cgroup.LimitPids && !hasRlimit(p.Rlimits, "nproc") {
			p.Rlimits = append(p.Rlimits, Rlimit{Name: "nproc", Resource: unix.RLIMIT_NPROC, Soft: uint64(p.Limits.Pids), Hard: uint64(p.Limits.Pids)})
			res.Limits[w.Limit] = StateDegraded + ": enforced as RLIMIT_NPROC=" + fmt.Sprint(p.Limits.Pids) + " (per user namespace) instead of pids.max: " + w.Reason
			c.pidsDegraded = true
		}
	}
	for _, c := range causes {
		what := "limit " + c.limits[0] + " not enforced"
		if len(c.limits) > 1 {
			what = "limits " + strings.Join(c.limits, ", ") + " not enforced"
		}
		if c.pidsDegraded {
			what += " (pids degraded to RLIMIT_NPROC)"
		}
		res.Warnings = append(res.Warnings, Warning{What: what, Reason: joinReasons(c.reasons) + "; " + c.fix})
	}
	l.res = res
	return nil, nil
}

// joinReasons joins the reasons of one cause; "the memory controller is X"
// and "the cpu controller is X" become "the memory and cpu controllers are X".
func joinReasons(reasons []string) string {
	var names []string
	rest := ""
	for _, r := range reasons {
		name, tail, ok := strings.Cut(strings.TrimPrefix(r, "the "), " controller is ")
		if !ok || !strings.HasPrefix(r, "the ") || (rest != "" && tail != rest) {
			return strings.Join(reasons, "; ")
		}
		names, rest = append(names, name), tail
	}
	if len(names) < 2 {
		return strings.Join(reasons, "; ")
	}
	return "the " + strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1] + " controllers are " + rest
}

// startInit compiles the jail's programs and clones its init (into the
// cgroup leaf when there is one).
func (l *launch) startInit() error {
	p := l.p
	for _, fd := range p.PassFDs {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return Usagef("--pass-fd %d: not an open file descriptor of warden", fd)
		}
	}
	initProg, payloadProg, err := Programs(p, l.syncC)
	if err != nil {
		return err
	}
	cgfd := -1
	if l.leaf.Path() != "" {
		if cgfd, err = l.leaf.FD(); err != nil {
			return fmt.Errorf("cgroup %s: %w", l.leaf.Path(), err)
		}
	}
	child := jailprog.New(jailprog.Spec{Init: initProg, Payload: payloadProg, Cloneflags: p.Cloneflags,
		// CLONE_INTO_CGROUP: init is born in the leaf, so not one
		// instruction of the jail runs outside its limits.
		CgroupFD: cgfd, SyncFD: 3 + len(p.PassFDs), PassFDs: len(p.PassFDs), ExitStatus: p.Gate != ""})
	l.phase("programs compiled")
	if err := l.startChild(child); err != nil {
		return fmt.Errorf("create user namespace: %w", err)
	}
	l.phase("init cloned")
	if cgfd >= 0 && !child.InCgroup {
		// clone3 was refused (a seccomp filter around warden): move init
		// into the leaf before it is told to go.
		if err := l.leaf.AddPID(l.pid); err != nil {
			l.kill()
			return fmt.Errorf("cgroup %s: %w", l.leaf.Path(), err)
		}
	}
	return nil
}

// startChild clones child from a locked thread and waits for it there. The
// thread is locked and never unlocked: it exits with the goroutine, only
// after the child has been reaped, so PR_SET_PDEATHSIG (which fires when
// the creating thread exits) cannot fire early because the Go scheduler
// retired the thread.
func (l *launch) startChild(child *jailprog.Child) error {
	started := make(chan error, 1)
	l.done = make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := child.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(child.Pid, &ws, 0, nil)
			if err != unix.EINTR {
				break
			}
		}
		child.Release()
		switch {
		case ws.Exited() && ws.ExitStatus() == 0:
			l.done <- nil
		case ws.Signaled():
			l.done <- fmt.Errorf("killed by %s", unix.SignalName(ws.Signal()))
		default:
			l.done <- fmt.Errorf("exit status %d", ws.ExitStatus())
		}
	}()
	err := <-started
	// The child has its copy; EOF on the parent's end now means it is gone.
	unix.Close(l.syncC)
	l.syncC = -1
	if err != nil {
		return err
	}
	l.child, l.pid = child, child.Pid
	return nil
}

// kill ends a jail whose setup failed on the host side.
func (l *launch) kill() {
	unix.Kill(l.pid, unix.SIGKILL)
	<-l.done
}

// configure writes the ID maps, attaches the network helper and tells init
// to go.
func (l *launch) configure() error {
	p := l.p
	var err error
	if p.Cloneflags&unix.CLONE_NEWUSER == 0 {
		// No user namespace of its own (an OCI container created by an
		// engine that made one already): no maps to write.
	} else if p.Maps.Ranges && os.Geteuid() == 0 {
		// Root (or root of an engine's user namespace, an OCI runtime's
		// caller) writes any map itself, as runc does.
		err = userns.WritePrivileged(l.pid, p.Maps)
	} else if p.Maps.Ranges {
		var h userns.Helpers
		if h, err = userns.FindHelpers(); err == nil {
			err = h.Install(l.pid, p.Maps)
		}
	} else {
		err = userns.WriteDirect(l.pid, p.Maps)
	}
	if err != nil {
		return fmt.Errorf("write ID maps of the user namespace: %w", err)
	}
	l.phase("id maps written")
	if p.ExecSocket != "" {
		// Before "go": once the jail is built, init is non-dumpable and
		// its namespaces can no longer be opened.
		if l.ns, err = serveNamespaces(l.pid, p.ExecSocket); err != nil {
			return err
		}
	}
	// The network helper attaches to the jail's namespaces from the host
	// side, after the maps (it enters the user namespace) and before init
	// sets anything up.
	net, err := netns.Start(l.pid, p.NetOpts)
	if err != nil {
		return fmt.Errorf("network %s: %w", p.Net, err)
	}
	l.net = net
	// A filter from the request cache must have passed its check before
	// anything runs under it.
	if err := p.checkSeccomp(); err != nil {
		net.Stop()
		return err
	}
	// "go": its bytes are the jail's resolv.conf when the plan writes the
	// network helper's one.
	msg := []byte("go")
	for _, o := range p.Mounts {
		if o.Kind == mount.File && o.Source == resolvSource {
			msg = net.ResolvConf()
		}
	}
	if len(msg) == 0 || len(msg) > goBufSize {
		net.Stop()
		return bug(fmt.Errorf("go message of %d bytes", len(msg)))
	}
	if _, err := unix.Write(l.syncP, msg); err != nil {
		net.Stop()
		return fmt.Errorf("start the jail's init: %w", err)
	}
	l.phase("network ready, go sent")
	return nil
}

// inForeground reports whether stdin is a terminal whose foreground process
// group is warden's own: only then may the payload take the foreground.
func inForeground() bool {
	pg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	return err == nil && pg == unix.Getpgrp()
}

// restoreForeground gives the terminal back to warden's process group after
// the payload had it.
func restoreForeground(was bool) {
	if !was {
		return
	}
	// tcsetpgrp(3) from a background process group raises SIGTTOU unless
	// it is ignored.
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, unix.Getpgrp())
}

func hasRlimit(rl []Rlimit, name string) bool {
	for _, r := range rl {
		if r.Name == name {
			return true
		}
	}
	return false
}

// tiocstiExposed warns when the payload shares a terminal and nothing stops
// it from pushing input into it: no seccomp filter (the profiles refuse
// TIOCSTI and TIOCLINUX) and the kernel still allows TIOCSTI
// (dev.tty.legacy_tiocsti, Linux 6.2).
func tiocstiExposed(p *Plan) (Warning, bool) {
	if len(p.Seccomp) > 0 {
		return Warning{}, false
	}
	tty := false
	for fd := 0; fd <= 2; fd++ {
		if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
			tty = true
		}
	}
	if !tty {
		return Warning{}, false
	}
	if b, err := os.ReadFile("/proc/sys/dev/tty/legacy_tiocsti"); err == nil && strings.TrimSpace(string(b)) == "0" {
		return Warning{}, false
	}
	return Warning{What: "terminal input injection not blocked",
		Reason: "no seccomp filter (--seccomp none) and the kernel allows TIOCSTI: the command can type into your terminal; use a seccomp profile or sysctl -w dev.tty.legacy_tiocsti=0"}, true
}
