package sandbox

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/seccomp"
)

// supervise runs until stage-2 is reaped: it takes stage-2's messages,
// forwards signals, enforces the timeout and answers seccomp notifications;
// then it collects the figures of the run.
func (l *launch) supervise(sigs <-chan os.Signal) (*Result, error) {
	p, res := l.p, l.res
	msgs := make(chan Message, 4)
	go func() {
		defer close(msgs)
		for {
			m, err := recv(l.syncP)
			if err != nil {
				return
			}
			msgs <- m
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
	// Signals are held until stage-2 reports the payload started: before
	// that, stage-2 may not catch them yet, and the kernel drops a
	// signal to a namespace's init that has no handler for it
	// (pid_namespaces(7)), or the runtime's default ends stage-2.
	ready := false
	var held []os.Signal
	gotExit := false
	var initDied error // stage-2's wait status
	for msgs != nil || done != nil {
		select {
		case m, ok := <-msgs:
			if !ok {
				msgs = nil
				continue
			}
			switch m.Kind {
			case MsgNotify:
				audit.start(m.FD, p.seccompProfile)
			case MsgReady:
				l.phase("payload started")
				// Stage-2 forwards signals from now on; those that came
				// before reach the payload now.
				ready = true
				for _, s := range held {
					unix.Kill(l.pid, s.(syscall.Signal))
				}
				held = nil
			case MsgStopped:
				l.jobStop()
			case MsgError:
				stageErr = m.Error
			case MsgExit:
				gotExit = true
				l.phase("payload exited")
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
		case werr := <-done:
			// stage-2 is reaped; its own status carries nothing the
			// "exit" message did not (it exits 0 after "exit", 1 after
			// "error", or died of a signal with the whole jail) unless
			// it sent neither: then init itself failed, which is said.
			done = nil
			initDied = werr
		case s := <-sigs:
			if !ready {
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
				send(l.syncP, Message{Kind: MsgContinue, Status: 1})
				continue
			}
			unix.Kill(l.pid, s.(syscall.Signal))
		case <-timeout:
			timedOut, timeout = true, nil
			unix.Kill(l.pid, unix.SIGTERM)
			grace = time.After(p.KillGrace)
		case <-grace:
			grace = nil
			// SIGKILL of the jail's init makes the kernel kill every
			// process of its pid namespace (pid_namespaces(7)).
			unix.Kill(l.pid, unix.SIGKILL)
		}
	}
	l.logWG.Wait()
	l.phase("stage-2 reaped")
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

// collect gathers the network, seccomp and cgroup figures of a finished run.
func (l *launch) collect(audit *auditRun) {
	res := l.res
	info := l.net.Info()
	res.Net = &info
	if rx, tx, err := l.net.Counters(); err == nil {
		res.NetRx, res.NetTx = rx, tx
	}
	if d, err := audit.finish(); audit.auditor != nil {
		res.Denials = d
		if err != nil {
			res.Warnings = append(res.Warnings, Warning{What: "seccomp audit", Reason: err.Error()})
		}
	}
	if l.leaf.Path() == "" {
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
// control. When the shell resumes it (fg or bg), warden tells stage-2,
// which resumes the payload and, in the foreground case, hands it the
// terminal.
func (l *launch) jobStop() {
	if l.p.Foreground {
		restoreForeground(true)
	} else if inForeground() {
		// A background payload touched the terminal after `fg` already
		// gave warden the terminal (the shell sends no SIGCONT to a job
		// that runs): hand it on, no stop needed.
		l.p.Foreground = true
		send(l.syncP, Message{Kind: MsgContinue, Status: 1})
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
	// it could wake the payload before stage-2 has handed it the
	// terminal, and a read would stop it again. The continue message
	// below wakes it instead.
	l.resumes++
	// Resumed: by fg when the terminal is ours again, else by bg (the
	// payload then runs on in the background of the caller's shell).
	fg := 0
	if pg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil && pg == unix.Getpgrp() {
		fg = 1
	}
	// At the end warden hands the terminal back to its own group only if
	// it still has it.
	l.p.Foreground = fg == 1
	send(l.syncP, Message{Kind: MsgContinue, Status: fg})
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
