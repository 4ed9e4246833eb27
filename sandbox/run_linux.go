package sandbox

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox/cgroup"
	"github.com/warden-sandbox/warden/sandbox/mount"
	"github.com/warden-sandbox/warden/sandbox/netns"
	"github.com/warden-sandbox/warden/seccomp"
	"github.com/warden-sandbox/warden/userns"
)

// Ending says how a run ended.
type Ending string

const (
	EndExit       Ending = "exit"
	EndSignal     Ending = "signal"
	EndTimeout    Ending = "timeout"
	EndSetupError Ending = "setup-error"
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

// CatchSignals starts catching the signals Run forwards to the payload, in
// the background. signal.Notify hands each signal to the runtime's signal
// thread and waits for it to be enabled, about 2 ms here for nine signals;
// warden's CLI calls CatchSignals before it parses the policy so that this
// overlaps that work. Run calls it too. A signal caught before the payload
// exists reaches the payload once it has started.
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

// takeSignals waits until the forwarded signals are caught and hands their
// channel to the caller, which stops it; the next CatchSignals starts anew.
func takeSignals() chan os.Signal {
	CatchSignals()
	catching.Lock()
	sigs, ready := catching.sigs, catching.ready
	catching.sigs, catching.ready = nil, nil
	catching.Unlock()
	<-ready
	return sigs
}

// Run executes plan: it starts stage-2 in new namespaces, installs the ID
// maps, lets stage-2 set up the jail, forwards signals and waits. Stage-2's
// log records are copied to logw. A setup failure inside the jail is
// returned as a *StageError.
func Run(p *Plan, logw io.Writer) (*Result, error) {
	l := &launch{p: p, logw: logw, start: time.Now()}
	l.phase = l.tracer()
	if p.LogLevel == "debug" {
		p.TraceEpoch = processStart.UnixNano()
	}
	l.phase("run")
	if err := l.openFiles(); err != nil {
		return nil, err
	}
	defer l.closeFiles()
	p.Foreground = inForeground()
	if res, err := l.setupCgroup(); err != nil {
		return res, err
	}
	defer l.leaf.Remove()
	// Signals are caught before stage-2 exists so none is lost between
	// start and the forwarding loop.
	sigs := takeSignals()
	defer signal.Stop(sigs)
	l.encodePlan()
	if err := l.startStage2(); err != nil {
		return nil, err
	}
	if err := l.configure(); err != nil {
		l.kill()
		return nil, err
	}
	defer l.net.Stop()
	return l.supervise(sigs)
}

// launch is one run in progress, the parent's side of protocol.go.
type launch struct {
	p     *Plan
	logw  io.Writer
	start time.Time
	phase func(step string)

	planR, planW, syncP, syncC, logR, logW *os.File

	leaf  *cgroup.Leaf
	net   *netns.Helper
	cmd   *exec.Cmd
	pid   int
	done  chan error // stage-2 reaped
	logWG sync.WaitGroup
	res   *Result

	planJSON <-chan encoded // the plan, encoded early (encodePlan); nil: encode in configure
	resumes  int            // SIGCONTs of warden's own resumes (jobStop) not yet seen by supervise
}

// tracer returns the phase logger: with --log-level debug, each phase is
// logged with the time since start (this is where startup time goes).
func (l *launch) tracer() func(string) {
	if l.p.LogLevel != "debug" || l.logw == nil {
		return func(string) {}
	}
	log := slog.New(slog.NewTextHandler(l.logw, &slog.HandlerOptions{Level: slog.LevelDebug})).With("stage", "parent")
	return func(step string) {
		log.Debug("phase", "step", step, "ms", float64(time.Since(processStart).Microseconds())/1000)
	}
}

// encodePlan encodes the plan in the background while stage-2 is cloned
// and exec'd (about 1.5 ms of the parent's critical path here), unless
// the plan still changes after the start: the network helper's DNS goes
// into the jail's resolv.conf. The plan is not changed after this call.
func (l *launch) encodePlan() {
	for _, o := range l.p.Mounts {
		if o.Kind == mount.File && o.Source == resolvSource {
			return
		}
	}
	ch := make(chan encoded, 1)
	l.planJSON = ch
	go func() {
		b, err := json.Marshal(l.p)
		ch <- encoded{b, err}
	}()
}

type encoded struct {
	b   []byte
	err error
}

func (l *launch) openFiles() error {
	var err error
	if l.planR, l.planW, err = os.Pipe(); err != nil {
		return fmt.Errorf("plan pipe: %w", err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		l.closeFiles()
		return fmt.Errorf("sync socket: %w", err)
	}
	l.syncP, l.syncC = os.NewFile(uintptr(fds[0]), "sync"), os.NewFile(uintptr(fds[1]), "sync-child")
	if l.logR, l.logW, err = os.Pipe(); err != nil {
		l.closeFiles()
		return fmt.Errorf("log pipe: %w", err)
	}
	return nil
}

// closeFiles closes what is still open; the copies stage-2 inherited are
// closed early (closeChildEnds) so that EOF means stage-2 is gone.
func (l *launch) closeFiles() {
	for _, f := range []**os.File{&l.planR, &l.planW, &l.syncP, &l.syncC, &l.logR, &l.logW} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
}

func (l *launch) closeChildEnds() {
	for _, f := range []**os.File{&l.planR, &l.syncC, &l.logW} {
		if *f != nil {
			(*f).Close()
			*f = nil
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
	for _, w := range cwarns {
		what, reason := "limit "+w.Limit+" not enforced", w.Reason+"; "+w.Fix
		// best-effort: RLIMIT_NPROC is a fair stand-in for pids.max here,
		// because since Linux 5.14 it is counted per user namespace
		// (ucounts), so it counts the jail's tasks and nothing else.
		if w.Limit == cgroup.LimitPids && !hasRlimit(p.Rlimits, "nproc") {
			p.Rlimits = append(p.Rlimits, Rlimit{Name: "nproc", Resource: unix.RLIMIT_NPROC, Soft: uint64(p.Limits.Pids), Hard: uint64(p.Limits.Pids)})
			res.Limits[w.Limit] = StateDegraded + ": enforced as RLIMIT_NPROC=" + fmt.Sprint(p.Limits.Pids) + " (per user namespace) instead of pids.max: " + w.Reason
			what = "limit pids degraded to RLIMIT_NPROC"
		}
		res.Warnings = append(res.Warnings, Warning{What: what, Reason: reason})
	}
	l.res = res
	return nil, nil
}

// startStage2 clones stage-2 into its namespaces (and into the cgroup leaf)
// and starts copying its log.
func (l *launch) startStage2() error {
	p := l.p
	files := []*os.File{l.planR, l.syncC, l.logW}
	for _, fd := range p.PassFDs {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return Usagef("--pass-fd %d: not an open file descriptor of warden", fd)
		}
		files = append(files, os.NewFile(uintptr(fd), fmt.Sprintf("pass-%d", fd)))
	}
	cmd := newStage2Cmd(p, files)
	useCgroupFD := false
	if l.leaf.Path() != "" {
		fd, err := l.leaf.FD()
		if err != nil {
			return fmt.Errorf("cgroup %s: %w", l.leaf.Path(), err)
		}
		// CLONE_INTO_CGROUP: stage-2 is born in the leaf, so not one
		// instruction of the jail runs outside its limits.
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
		useCgroupFD = true
	}
	started := make(chan error, 1)
	l.done = make(chan error, 1)
	go func() {
		// Locked and never unlocked: the thread exits with this goroutine,
		// only after stage-2 has been reaped, so Pdeathsig cannot fire
		// early because the Go scheduler retired the creating thread.
		runtime.LockOSThread()
		err := cmd.Start()
		if err != nil && useCgroupFD && (errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EOPNOTSUPP)) {
			// Kernels before 5.7 (or a seccomp policy around warden)
			// lack clone3/CLONE_INTO_CGROUP: start normally and move
			// stage-2 in before it is told to go.
			cmd = newStage2Cmd(p, files)
			if err = cmd.Start(); err == nil {
				if err = l.leaf.AddPID(cmd.Process.Pid); err != nil {
					cmd.Process.Kill()
					cmd.Wait()
				}
			}
		}
		if err != nil {
			started <- err
			return
		}
		l.cmd = cmd
		started <- nil
		l.done <- cmd.Wait()
	}()
	err := <-started
	l.closeChildEnds()
	if err != nil {
		return fmt.Errorf("create user namespace: %w", err)
	}
	l.pid = l.cmd.Process.Pid
	l.phase("stage-2 started")
	logR := l.logR
	l.logR = nil
	l.logWG.Add(1)
	go func() { defer l.logWG.Done(); copyLog(logR, l.logw) }()
	return nil
}

// kill ends a jail whose setup failed on the host side.
func (l *launch) kill() {
	unix.Kill(l.pid, unix.SIGKILL)
	<-l.done
	l.logWG.Wait()
}

// configure writes the ID maps, attaches the network helper, sends the
// plan and tells stage-2 to go.
func (l *launch) configure() error {
	p := l.p
	if p.Maps.Ranges {
		h, err := userns.FindHelpers()
		if err == nil {
			err = h.Install(l.pid, p.Maps)
		}
		if err != nil {
			return fmt.Errorf("write ID maps of the user namespace: %w", err)
		}
	}
	l.phase("id maps written")
	// The network helper attaches to the jail's namespaces from the host
	// side, after the maps (it enters the user namespace) and before
	// stage-2 sets anything up.
	net, err := netns.Start(l.pid, p.NetOpts)
	if err != nil {
		return fmt.Errorf("network %s: %w", p.Net, err)
	}
	l.net = net
	var b []byte
	if l.planJSON != nil {
		r := <-l.planJSON
		b, err = r.b, r.err
	} else {
		for i := range p.Mounts {
			if p.Mounts[i].Kind == mount.File && p.Mounts[i].Source == resolvSource {
				p.Mounts[i].Data = string(net.ResolvConf())
			}
		}
		b, err = json.Marshal(p)
	}
	if err == nil {
		_, err = l.planW.Write(b)
	}
	l.planW.Close()
	l.planW = nil
	if err != nil {
		net.Stop()
		return bug(fmt.Errorf("send plan: %w", err))
	}
	l.phase("network ready, plan sent")
	if err := send(l.syncP, Message{Kind: MsgGo}); err != nil {
		net.Stop()
		return fmt.Errorf("start stage-2: %w", err)
	}
	return nil
}

func send(f *os.File, m Message) error {
	return sendFD(f, m, -1)
}

// sendFD sends m, with fd attached as SCM_RIGHTS when fd >= 0.
func sendFD(f *os.File, m Message, fd int) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	return unix.Sendmsg(int(f.Fd()), b, oob, nil, 0)
}

func recv(f *os.File) (Message, error) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(f.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return Message{}, err
	}
	if n == 0 {
		return Message{}, io.EOF
	}
	m := Message{FD: -1}
	if oobn > 0 {
		if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(cms) > 0 {
			if fds, err := unix.ParseUnixRights(&cms[0]); err == nil && len(fds) > 0 {
				m.FD = fds[0]
			}
		}
	}
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		return Message{}, fmt.Errorf("bad message from stage-2: %w", err)
	}
	return m, nil
}

// copyLog re-emits stage-2's log records: warnings and errors in warden's
// own "warden: warning: ..." form, other records as they are.
func copyLog(r io.ReadCloser, w io.Writer) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if w == nil {
			continue
		}
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "level=WARN msg="); ok {
			line = "warden: warning: " + unquoteMsg(rest)
		} else if rest, ok := strings.CutPrefix(line, "level=ERROR msg="); ok {
			line = "warden: error: " + unquoteMsg(rest)
		}
		fmt.Fprintf(w, "%s\n", line)
	}
}

// unquoteMsg turns `"text" k=v ...` (slog's text form) into `text (k=v ...)`.
func unquoteMsg(s string) string {
	msg, rest := s, ""
	if strings.HasPrefix(s, `"`) {
		if q, err := strconv.QuotedPrefix(s); err == nil {
			msg, _ = strconv.Unquote(q)
			rest = strings.TrimSpace(s[len(q):])
		}
	} else if i := strings.IndexByte(s, ' '); i > 0 {
		msg, rest = s[:i], strings.TrimSpace(s[i+1:])
	}
	rest = strings.TrimSpace(strings.ReplaceAll(rest, "stage=stage2", ""))
	if rest != "" {
		return msg + " (" + rest + ")"
	}
	return msg
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
