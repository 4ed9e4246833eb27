package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox/jailprog"
	"github.com/warden-sandbox/warden/seccomp"
)

// supervise runs until init is reaped: it takes init's messages, sends
// signals to the payload, enforces the timeout and answers seccomp
// notifications; then it collects the figures of the run.
func (l *launch) supervise(sigs <-chan os.Signal) (*Result, error) {
	p, res := l.p, l.res
	msgs := make(chan jailprog.Message, 4)
	// The socket waits in the runtime's poller, not on a thread of its own.
	rc, pollErr := l.pollSync()
	go func() {
		defer close(msgs)
		if pollErr != nil {
			return
		}
		for {
			var m jailprog.Message
			var recvErr error
			err := rc.Read(func(fd uintptr) bool {
				m, recvErr = jailprog.Recv(int(fd))
				return recvErr != unix.EAGAIN
			})
			if err == nil {
				err = recvErr
			}
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return
			}
			msgs <- m
		}
	}()
	defer func() {
		if l.payloadFD >= 0 {
			unix.Close(l.payloadFD)
		}
	}()
	var stageErr *StageError
	audit := &auditRun{}
	defer audit.stop()
	var timeout, grace <-chan time.Time
	if p.Timeout > 0 {
		timeout = time.After(p.Timeout)
	}
	timedOut := false
	done := l.done
	// Signals are held until the payload exists; those that came before
	// reach it then.
	var held []os.Signal
	gotExit := false
	var initDied error // init's wait status
	for msgs != nil || done != nil {
		select {
		case m, ok := <-msgs:
			if !ok {
				msgs = nil
				continue
			}
			switch m.Kind {
			case jailprog.MsgNotify:
				if m.Step >= jailprog.NotifyTrace {
					l.serveTrace(int(m.Step)-jailprog.NotifyTrace, m.FD)
				} else if m.Step >= jailprog.NotifyOverlay {
					l.keepUpper(int(m.Step)-jailprog.NotifyOverlay, m.FD)
				} else {
					audit.start(m.FD, p.seccompProfile)
				}
			case jailprog.MsgStarted:
				l.phase("payload started")
				resumeGC()
				l.started(m)
				// The payload's execve has happened by now: init forks it
				// vfork-style and resumes only then; a failed execve has
				// sent its error first.
				if p.Started != nil && stageErr == nil {
					p.Started(StartInfo{InitPid: l.pid, PayloadPid: l.payloadPid, Limits: res.Limits, Exec: p.ExecInfo(l.leaf.Path())})
				}
				for _, s := range held {
					l.signal(s.(syscall.Signal))
				}
				held = nil
			case jailprog.MsgStopped:
				// A stop the caller's shell must see: the payload holds
				// the terminal (Ctrl-Z), or in the background it read
				// from or wrote to the terminal. A payload that stops
				// itself in the background (kill -STOP $$) is left
				// to whoever continues it.
				if sig := syscall.Signal(m.Status); p.Foreground || sig == syscall.SIGTTIN || sig == syscall.SIGTTOU {
					l.jobStop()
				}
			case jailprog.MsgError:
				stageErr = l.stageError(m)
			case jailprog.MsgExit:
				gotExit = true
				l.phase("payload exited")
				res.Usage = &Usage{
					UserUsec:   m.Rusage.Utime.Sec*1e6 + m.Rusage.Utime.Usec,
					SystemUsec: m.Rusage.Stime.Sec*1e6 + m.Rusage.Stime.Usec,
					MaxRSSKiB:  m.Rusage.Maxrss,
				}
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
			default:
				if m.FD >= 0 {
					unix.Close(m.FD)
				}
			}
		case werr := <-done:
			// init is reaped; its own status carries nothing the "exit"
			// message did not (it exits 0 after "exit", 1 after "error",
			// or was killed with the whole jail) unless it sent neither:
			// then init itself failed, which is said.
			done = nil
			initDied = werr
		case s := <-sigs:
			if l.payloadFD < 0 {
				held = append(held, s)
				continue
			}
			if s == syscall.SIGCONT && l.resumes > 0 {
				l.resumes-- // the shell's resume of warden (jobStop)
				continue
			}
			if s == syscall.SIGCONT && !p.Foreground && inForeground() {
				// Started in the background (`warden run ... &`) and
				// now brought to the foreground with fg: the payload
				// gets the terminal, as after a Ctrl-Z and fg.
				p.Foreground = true
				l.resume(true)
				continue
			}
			l.signal(s.(syscall.Signal))
		case <-timeout:
			timedOut, timeout = true, nil
			l.signal(unix.SIGTERM)
			grace = time.After(p.KillGrace)
		case <-grace:
			grace = nil
			if l.exec {
				l.signal(unix.SIGKILL) // the jail goes on
				continue
			}
			// SIGKILL of the jail's init makes the kernel kill every
			// process of its pid namespace (pid_namespaces(7)).
			unix.Kill(l.pid, unix.SIGKILL)
		}
	}
	l.phase("init reaped")
	l.collect(audit)
	if !gotExit && stageErr == nil && !timedOut && res.Ending != EndOOM && res.Ending != EndPidsLimit {
		// Neither "exit" nor "error", and no limit explains it: init
		// died (the jail's processes went with it).
		why := "without a status"
		if initDied != nil {
			why = initDied.Error()
		}
		res.Warnings = append(res.Warnings, Warning{What: "the jail's init ended before the command", Reason: why + "; every process of the jail was killed with it"})
	}
	restoreForeground(p.Foreground)
	res.Wall = time.Since(l.start)
	if stageErr != nil {
		res.Ending = EndSetupError
		return res, stageErr
	}
	if timedOut {
		res.Ending = EndTimeout
	}
	return res, nil
}

// pollSync hands the parent's end of the sync socket to the runtime's
// poller (non-blocking, an *os.File that owns it from now on).
func (l *launch) pollSync() (syscall.RawConn, error) {
	if err := unix.SetNonblock(l.syncP, true); err != nil {
		return nil, err
	}
	l.syncFile = os.NewFile(uintptr(l.syncP), "sync")
	return l.syncFile.SyscallConn()
}

// started takes the "started" message: the payload's pidfd, its pid in
// warden's pid namespace (from the pidfd's fdinfo), and init's marks.
func (l *launch) started(m jailprog.Message) {
	l.payloadFD = m.FD
	if m.FD >= 0 {
		l.payloadPid = pidfdPid(m.FD)
	}
	for _, mark := range l.child.Marks(m) {
		if mark == markCwdFallback {
			l.res.Warnings = append(l.res.Warnings, Warning{What: "the current directory is not visible in the jail",
				Reason: "running in " + l.p.CwdFallback + " instead of " + l.p.Cwd, Loud: true})
		}
	}
}

// stageError turns an "error" message into the error the user sees.
func (l *launch) stageError(m jailprog.Message) *StageError {
	stage, path, detail, errno := l.child.Error(m)
	se := &StageError{Step: stage, Op: detail, Path: path, Errno: errno}
	if stage == "mount" || path == "" {
		se.Detail = detail
	}
	return se
}

// signal sends sig to the payload through its pidfd: no pid reuse can
// redirect it.
func (l *launch) signal(sig syscall.Signal) {
	if l.payloadFD < 0 {
		return
	}
	unix.PidfdSendSignal(l.payloadFD, sig, nil, 0)
	// A stopped payload acts on SIGTERM or SIGHUP only once it runs again:
	// continue it, as systemd and a shell's kill do, so that a timeout or
	// `kill` of warden is not left pending.
	if sig == syscall.SIGTERM || sig == syscall.SIGHUP {
		unix.PidfdSendSignal(l.payloadFD, unix.SIGCONT, nil, 0)
	}
}

// resume continues the payload's process group after warden was resumed;
// with fg it first gets the terminal's foreground back.
func (l *launch) resume(fg bool) {
	if fg && l.payloadPid > 0 {
		if err := setForeground(l.payloadPid); err != nil && l.logw != nil {
			fmt.Fprintf(l.logw, "warden: warning: give the terminal back to the command: %v\n", err)
		}
	}
	if l.payloadPid > 0 {
		unix.Kill(-l.payloadPid, unix.SIGCONT)
	}
}

// pidfdPid reads the pid a pidfd refers to, in warden's pid namespace
// (proc(5), /proc/PID/fdinfo: "Pid:").
func pidfdPid(fd int) int {
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// setForeground makes pgid the terminal's foreground process group.
// tcsetpgrp(3) from a background process group stops the caller with
// SIGTTOU unless it is ignored.
func setForeground(pgid int) error {
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	return unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, pgid)
}

// collect gathers the network, seccomp and cgroup figures of a finished run.
func (l *launch) collect(audit *auditRun) {
	res := l.res
	if l.net != nil {
		info := l.net.Info()
		res.Net = &info
		if rx, tx, err := l.net.Counters(); err == nil {
			res.NetRx, res.NetTx = rx, tx
		}
	}
	if d, err := audit.finish(); audit.auditor != nil {
		res.Denials = d
		if err != nil {
			res.Warnings = append(res.Warnings, Warning{What: "seccomp audit", Reason: err.Error()})
		}
	}
	if l.leaf == nil || l.leaf.Path() == "" {
		return
	}
	if st, err := l.leaf.Stats(); err == nil {
		res.Cgroup = &st
	}
	// oom and pids-limit come from the cgroup's own event counters, not
	// from guessing at exit statuses.
	switch l.leaf.Ending() {
	case "oom":
		res.Ending = EndOOM
	case "pids-limit":
		if res.Ending != EndExit || res.Code != 0 {
			res.Ending = EndPidsLimit
		}
	}
}

// auditRun is the seccomp audit supervisor of one run (--seccomp-audit).
type auditRun struct {
	auditor *seccomp.Auditor
	done    chan struct{}
	err     error
	cancel  context.CancelFunc
}

// start answers notifications on fd (which it owns from now on).
func (a *auditRun) start(fd int, prof *seccomp.Profile) {
	if fd < 0 {
		return
	}
	if prof == nil || a.auditor != nil {
		unix.Close(fd)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.auditor, a.done, a.cancel = seccomp.NewAuditor(fd, prof), make(chan struct{}), cancel
	go func() {
		defer close(a.done)
		defer unix.Close(fd)
		a.err = a.auditor.Run(ctx)
	}()
}

// finish waits for the supervisor: every filtered task is gone, so the
// kernel reports POLLHUP and Run returns; the cancel is a backstop.
func (a *auditRun) finish() ([]seccomp.Denial, error) {
	if a.auditor == nil {
		return nil, nil
	}
	a.stop()
	<-a.done
	return a.auditor.Denials(), a.err
}

func (a *auditRun) stop() {
	if a.cancel != nil {
		a.cancel()
	}
}

// jobStop is a stop of the payload that the caller's shell must see: Ctrl-Z
// of a payload that holds the terminal, or a payload in the background
// that read from (SIGTTIN) or wrote to (SIGTTOU) the terminal. warden
// takes the terminal back for its own process group if the payload had it
// and stops itself, as a shell job does, so the caller's shell regains
// control. When the shell resumes it (fg or bg), warden resumes the
// payload and, in the foreground case, hands it the terminal first.
func (l *launch) jobStop() {
	if l.p.Foreground {
		restoreForeground(true)
	} else if inForeground() {
		// A background payload touched the terminal after `fg` already
		// gave warden the terminal (the shell sends no SIGCONT to a job
		// that runs): hand it on, no stop needed.
		l.p.Foreground = true
		l.resume(true)
		return
	} else if !shellCanResume() {
		// No job-control shell above warden would ever resume it: the
		// payload stays stopped until a signal, the timeout or the end
		// of the session ends it, and warden keeps running to see that.
		return
	}
	// kill(2) of ourselves returns before every thread has stopped, so the
	// code below could run ahead of the stop; it waits for the SIGCONT of
	// the resume instead.
	cont := make(chan os.Signal, 1)
	signal.Notify(cont, syscall.SIGCONT)
	defer signal.Stop(cont)
	unix.Kill(unix.Getpid(), unix.SIGSTOP)
	<-cont
	// The same SIGCONT also reaches the forwarding channel; passed on,
	// it could wake the payload before warden has handed it the
	// terminal, and a read would stop it again. resume below wakes it
	// instead.
	l.resumes++
	// Resumed: by fg when the terminal is ours again, else by bg (the
	// payload then runs on in the background of the caller's shell).
	fg := false
	if pg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil && pg == unix.Getpgrp() {
		fg = true
	}
	// At the end warden hands the terminal back to its own group only if
	// it still has it.
	l.p.Foreground = fg
	l.resume(fg)
}

// shellCanResume reports whether warden's parent is in another process
// group of the same session, as a job-control shell is: only then is a
// stop of warden's group ever resumed. POSIX spares orphaned process
// groups the terminal stop signals for that reason.
func shellCanResume() bool {
	ppid := unix.Getppid()
	ppg, err1 := unix.Getpgid(ppid)
	psid, err2 := unix.Getsid(ppid)
	sid, err3 := unix.Getsid(0)
	return err1 == nil && err2 == nil && err3 == nil && ppg != unix.Getpgrp() && psid == sid
}
