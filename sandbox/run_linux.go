package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
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

// forwarded are the signals warden passes on to the payload.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

// Run executes plan: it starts stage-2 in new namespaces, installs the ID
// maps, lets stage-2 set up the jail, forwards signals and waits. Stage-2's
// log records are copied to logw. A setup failure inside the jail is
// returned as a *StageError.
func Run(p *Plan, logw io.Writer) (*Result, error) {
	start := time.Now()
	// With --log-level debug, each phase is logged with the time since
	// start: this is where startup time goes.
	phase := func(string) {}
	if p.LogLevel == "debug" && logw != nil {
		log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug})).With("stage", "parent")
		phase = func(what string) {
			log.Debug("phase", "step", what, "ms", float64(time.Since(start).Microseconds())/1000)
		}
	}
	planR, planW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("plan pipe: %w", err)
	}
	defer planR.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		planW.Close()
		return nil, fmt.Errorf("sync socket: %w", err)
	}
	syncP, syncC := os.NewFile(uintptr(fds[0]), "sync"), os.NewFile(uintptr(fds[1]), "sync-child")
	defer syncP.Close()
	logR, logW, err := os.Pipe()
	if err != nil {
		planW.Close()
		syncC.Close()
		return nil, fmt.Errorf("log pipe: %w", err)
	}
	p.Foreground = inForeground()

	// The cgroup leaf is made on the host side, before any namespace:
	// delegation is decided by the host's cgroup tree and the caller's
	// credentials there (and a systemd scope is asked for over the
	// caller's D-Bus, which would not authenticate from inside).
	leaf, cwarns, err := cgroup.Setup(p.Limits, p.LimitsMode, fmt.Sprintf("warden-%d", os.Getpid()))
	if err != nil {
		planR.Close()
		planW.Close()
		syncC.Close()
		logR.Close()
		logW.Close()
		// The report still lists every requested limit, each off.
		refused := map[string]string{}
		for _, l := range p.Limits.Requested() {
			refused[l] = StateOff + ": refused before the run: " + err.Error()
		}
		return &Result{Ending: EndSetupError, Limits: refused, Wall: time.Since(start)}, err
	}
	defer leaf.Remove()
	phase("cgroup")
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

	files := []*os.File{planR, syncC, logW}
	for _, fd := range p.PassFDs {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			planW.Close()
			syncC.Close()
			logW.Close()
			return nil, Usagef("--pass-fd %d: not an open file descriptor of warden", fd)
		}
		files = append(files, os.NewFile(uintptr(fd), fmt.Sprintf("pass-%d", fd)))
	}
	cmd := newStage2Cmd(p, files)
	useCgroupFD := false
	if leaf.Path() != "" {
		fd, err := leaf.FD()
		if err != nil {
			planW.Close()
			syncC.Close()
			logW.Close()
			logR.Close()
			return nil, fmt.Errorf("cgroup %s: %w", leaf.Path(), err)
		}
		// CLONE_INTO_CGROUP: stage-2 is born in the leaf, so not one
		// instruction of the jail runs outside its limits.
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
		useCgroupFD = true
	}
	// Signals are caught before stage-2 exists so none is lost between
	// start and the forwarding loop.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)

	started := make(chan error, 1)
	done := make(chan error, 1)
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
				err = leaf.AddPID(cmd.Process.Pid)
				if err != nil {
					cmd.Process.Kill()
					cmd.Wait()
				}
			}
		}
		if err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	err = <-started
	syncC.Close()
	logW.Close()
	if err != nil {
		planW.Close()
		logR.Close()
		return nil, fmt.Errorf("create user namespace: %w", err)
	}
	pid := cmd.Process.Pid
	phase("stage-2 started")
	var logWG sync.WaitGroup
	logWG.Add(1)
	go func() { defer logWG.Done(); copyLog(logR, logw) }()
	kill := func() {
		unix.Kill(pid, unix.SIGKILL)
		<-done
		logWG.Wait()
	}
	if p.Maps.Ranges {
		h, err := userns.FindHelpers()
		if err == nil {
			err = h.Install(pid, p.Maps)
		}
		if err != nil {
			planW.Close()
			kill()
			return nil, fmt.Errorf("write ID maps of the user namespace: %w", err)
		}
	}
	phase("id maps written")
	// The network helper attaches to the jail's namespaces from the host
	// side, after the maps (it enters the user namespace) and before
	// stage-2 sets anything up.
	net, err := netns.Start(pid, p.NetOpts)
	if err != nil {
		planW.Close()
		kill()
		return nil, fmt.Errorf("network %s: %w", p.Net, err)
	}
	defer net.Stop()
	for i := range p.Mounts {
		if p.Mounts[i].Kind == mount.File && p.Mounts[i].Source == resolvSource {
			p.Mounts[i].Data = string(net.ResolvConf())
		}
	}
	if err := json.NewEncoder(planW).Encode(p); err != nil {
		planW.Close()
		kill()
		return nil, bug(fmt.Errorf("send plan: %w", err))
	}
	planW.Close()
	phase("network ready, plan sent")
	if err := send(syncP, Message{Kind: MsgGo}); err != nil {
		kill()
		return nil, fmt.Errorf("start stage-2: %w", err)
	}

	msgs := make(chan Message, 4)
	go func() {
		defer close(msgs)
		for {
			m, err := recv(syncP)
			if err != nil {
				return
			}
			msgs <- m
		}
	}()

	var stageErr *StageError
	var auditor *seccomp.Auditor
	var auditDone chan struct{}
	var auditErr error
	auditCtx, stopAudit := context.WithCancel(context.Background())
	defer stopAudit()
	var timeout, grace <-chan time.Time
	if p.Timeout > 0 {
		timeout = time.After(p.Timeout)
	}
	timedOut := false
	for msgs != nil || done != nil {
		select {
		case m, ok := <-msgs:
			if !ok {
				msgs = nil
				continue
			}
			switch m.Kind {
			case MsgNotify:
				if m.FD >= 0 && p.seccompProfile != nil {
					auditor = seccomp.NewAuditor(m.FD, p.seccompProfile)
					auditDone = make(chan struct{})
					go func(fd int) {
						defer close(auditDone)
						defer unix.Close(fd)
						auditErr = auditor.Run(auditCtx)
					}(m.FD)
				} else if m.FD >= 0 {
					unix.Close(m.FD)
				}
			case MsgReady:
				phase("payload started")
			case MsgError:
				stageErr = m.Error
			case MsgExit:
				phase("payload exited")
				res.Usage = m.Usage
				ws := syscall.WaitStatus(m.Status)
				if ws.Signaled() {
					res.Ending, res.Signal = EndSignal, ws.Signal()
					// SECCOMP_RET_KILL_PROCESS ends a process with SIGSYS
					// (seccomp(2)); nothing else sends it in practice.
					if ws.Signal() == syscall.SIGSYS {
						res.Ending = EndSeccompKill
					}
				} else {
					res.Ending, res.Code, res.Signal = EndExit, ws.ExitStatus(), 0
				}
			}
		case <-done:
			// stage-2 is reaped; its own status carries nothing the
			// "exit" message did not (it exits 0 after "exit", 1 after
			// "error", or died of a signal with the whole jail).
			done = nil
		case s := <-sigs:
			unix.Kill(pid, s.(syscall.Signal))
		case <-timeout:
			timedOut, timeout = true, nil
			unix.Kill(pid, unix.SIGTERM)
			grace = time.After(p.KillGrace)
		case <-grace:
			grace = nil
			// SIGKILL of the jail's init makes the kernel kill every
			// process of its pid namespace (pid_namespaces(7)).
			unix.Kill(pid, unix.SIGKILL)
		}
	}
	logWG.Wait()
	phase("stage-2 reaped")
	info := net.Info()
	res.Net = &info
	if rx, tx, err := net.Counters(); err == nil {
		res.NetRx, res.NetTx = rx, tx
	}
	if auditor != nil {
		// Every filtered task is gone, so the kernel reports POLLHUP and
		// Run returns; the cancel is a backstop.
		stopAudit()
		<-auditDone
		res.Denials = auditor.Denials()
		if auditErr != nil {
			res.Warnings = append(res.Warnings, Warning{What: "seccomp audit", Reason: auditErr.Error()})
		}
	}
	restoreForeground(p.Foreground)
	if leaf.Path() != "" {
		if st, err := leaf.Stats(); err == nil {
			res.Cgroup = &st
		}
		// oom and pids-limit come from the cgroup's own event counters,
		// not from guessing at exit statuses.
		switch leaf.Ending() {
		case "oom":
			res.Ending = EndOOM
		case "pids-limit":
			if res.Ending != EndExit || res.Code != 0 {
				res.Ending = EndPidsLimit
			}
		}
	}
	res.Wall = time.Since(start)
	if stageErr != nil {
		res.Ending = EndSetupError
		return res, stageErr
	}
	if timedOut {
		res.Ending = EndTimeout
	}
	return res, nil
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

func copyLog(r io.ReadCloser, w io.Writer) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if w != nil {
			fmt.Fprintf(w, "%s\n", sc.Text())
		}
	}
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
