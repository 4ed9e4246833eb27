package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox/mount"
)

// Stage2Main is the jail's init. main dispatches to it when argv[1] is
// "stage2", before any flag parsing. It returns the process exit status:
// 0 after a reported payload exit, 1 after a reported setup error, 2 when it
// was not started by warden.
//
// Preconditions:
//   - Started by Run: new namespaces, fds 3 (plan), 4 (sync), 5 (log).
func Stage2Main() int {
	planF := os.NewFile(fdPlan, "plan")
	syncF := os.NewFile(fdSync, "sync")
	logF := os.NewFile(fdLog, "log")
	if planF == nil || syncF == nil || logF == nil || os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "warden: error: stage2 is internal; run `warden run -- CMD`")
		return 2
	}
	for _, fd := range []int{fdPlan, fdSync, fdLog} {
		unix.CloseOnExec(fd)
	}
	// Signals meant for the payload are caught from the start; a Go
	// program that is PID 1 must handle them or the runtime's default
	// action would apply to init. signal.Notify hands each signal to the
	// runtime's signal thread and waits for it (about 2 ms here, for
	// nine signals), so it runs while the plan is decoded and the jail
	// is set up, and the payload's start waits for it.
	sigs := make(chan os.Signal, 16)
	caught := make(chan struct{})
	go func() {
		signal.Notify(sigs, forwarded...)
		close(caught)
	}()
	// SIGTTOU, SIGTTIN and SIGPIPE are caught and dropped, not ignored:
	// an ignored signal stays ignored across execve(2), so the payload
	// would inherit SIG_IGN for them (no Ctrl-Z, no death by SIGPIPE).
	// Caught ones are reset to the default at exec.
	//
	// The fault signals are caught too, but only those sent with kill(2)
	// reach the channel: the Go runtime crashes on an unwanted SIGSEGV,
	// SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGSTKFLT, SIGSYS or SIGFPE sent by
	// a process, so without this `kill -SEGV 1` from the payload would end
	// the jail with a goroutine dump. Real faults still crash.
	drop := make(chan os.Signal, 8)
	dropped := make(chan struct{})
	go func() {
		signal.Notify(drop, syscall.SIGTTOU, syscall.SIGTTIN, syscall.SIGPIPE,
			syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGILL, syscall.SIGTRAP, syscall.SIGABRT,
			syscall.SIGSTKFLT, syscall.SIGSYS, syscall.SIGFPE)
		close(dropped)
		for range drop {
		}
	}()
	var p Plan
	if err := json.NewDecoder(planF).Decode(&p); err != nil {
		fmt.Fprintln(os.Stderr, "warden: error: stage2 is internal; fd 3 is not a plan:", err)
		return 2
	}
	planF.Close()
	// "warden-init" in ps instead of "exe" (from /proc/self/exe).
	unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&[]byte("warden-init\x00")[0])), 0, 0, 0)
	level := slog.LevelWarn
	_ = level.UnmarshalText([]byte(p.LogLevel))
	// No time attribute: the parent re-emits warnings in its own form.
	dropTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	log := slog.New(slog.NewTextHandler(logF, &slog.HandlerOptions{Level: level, ReplaceAttr: dropTime})).With("stage", "stage2")
	if p.TraceEpoch != 0 {
		epoch = time.Unix(0, p.TraceEpoch)
	}
	log.Debug("phase", "step", "stage-2 runtime up", "ms", sinceMs(processStart))
	log.Debug("phase", "step", "plan read", "ms", sinceMs(time.Now()))
	m, err := recv(syncF)
	if err != nil || m.Kind != MsgGo {
		return 1 // the parent is gone or broke the protocol; nothing to report to
	}
	fail := func(e *StageError) int {
		send(syncF, Message{Kind: MsgError, Error: e})
		return 1
	}
	if e := setupJail(&p, log); e != nil {
		return fail(e)
	}
	log.Debug("phase", "step", "jail set up", "ms", sinceMs(time.Now()))
	// The payload must not start before every signal meant for it is
	// caught (until then one sent to warden ends the jail instead).
	<-caught
	<-dropped
	log.Debug("phase", "step", "signals caught", "ms", sinceMs(time.Now()))
	pid, e := spawnPayload(&p, syncF)
	if e != nil {
		return fail(e)
	}
	log.Debug("phase", "step", "payload started", "pid", pid, "ms", sinceMs(time.Now()))
	send(syncF, Message{Kind: MsgReady, Pid: pid})
	go func() {
		for s := range sigs {
			sig := s.(syscall.Signal)
			unix.Kill(pid, sig)
			// A stopped payload acts on SIGTERM or SIGHUP only once it
			// runs again: continue it, as systemd and a shell's kill do,
			// so that a timeout or `kill` of warden is not left pending.
			if sig == syscall.SIGTERM || sig == syscall.SIGHUP {
				unix.Kill(pid, unix.SIGCONT)
			}
		}
	}()
	// Whether the payload holds the terminal: from the start when warden
	// was in the foreground, and after each resume, as the parent says
	// (fg gives it the terminal, bg does not).
	var holdsTerminal atomic.Bool
	holdsTerminal.Store(p.Foreground)
	go func() {
		for {
			m, err := recv(syncF)
			if err != nil {
				return
			}
			if m.Kind == MsgContinue {
				// The parent was resumed: with fg, give the terminal back
				// to the payload's process group; then wake it up.
				if m.Status == 1 {
					if err := setForeground(pid); err != nil {
						log.Warn("give the terminal back to the command", "err", err)
					}
				}
				holdsTerminal.Store(m.Status == 1)
				log.Debug("continue", "foreground", m.Status == 1)
				unix.Kill(-pid, unix.SIGCONT)
			}
		}
	}()
	// Job control: when the payload holds the terminal and is stopped
	// (Ctrl-Z), the parent is told, so that warden itself stops and the
	// caller's shell gets the terminal back; `fg` resumes all three.
	// The same when the payload runs in the background and touches the
	// terminal.
	onStop := func(sig syscall.Signal) {
		// In the background, a read from (or, with tostop, a write to)
		// the terminal stops the payload: warden stops too, so that the
		// shell shows the job stopped and `fg` gives the payload the
		// terminal.
		if holdsTerminal.Load() || sig == syscall.SIGTTIN || sig == syscall.SIGTTOU {
			send(syncF, Message{Kind: MsgStopped, Status: int(sig)})
		}
	}
	ws, ru := reap(pid, onStop)
	send(syncF, Message{Kind: MsgExit, Status: int(ws), Usage: &Usage{
		UserUsec:   ru.Utime.Sec*1e6 + ru.Utime.Usec,
		SystemUsec: ru.Stime.Sec*1e6 + ru.Stime.Usec,
		MaxRSSKiB:  ru.Maxrss,
	}})
	return 0
}

// setupJail applies the plan's namespaces-side state: hostname, loopback,
// mounts, working directory.
func setupJail(p *Plan, log *slog.Logger) *StageError {
	if err := unix.Sethostname([]byte(p.Hostname)); err != nil {
		return stageErr("hostname", "sethostname", p.Hostname, err)
	}
	if p.Cloneflags&syscall.CLONE_NEWNET != 0 {
		if err := loopbackUp(); err != nil {
			return stageErr("network", "SIOCSIFFLAGS lo up", "lo", err)
		}
	}
	log.Debug("phase", "step", "go received, hostname and lo done", "ms", sinceMs(time.Now()))
	skipped, err := mount.Apply(p.Mounts, p.Scratch)
	if err != nil {
		var me *mount.Error
		if errors.As(err, &me) {
			se := stageErr("mount", me.Step, me.Op.Target, me.Err)
			se.Detail = me.Op.String() + ": " + me.Step
			return se
		}
		return stageErr("mount", "", "", err)
	}
	for _, o := range skipped {
		log.Debug("optional mount skipped", "op", o.String())
	}
	if err := unix.Chdir(p.Cwd); err != nil {
		if p.CwdFallback == "" || !errors.Is(err, unix.ENOENT) {
			return stageErr("chdir", "chdir", p.Cwd, err)
		}
		// The caller's current directory is not part of this jail's view
		// (a policy that does not bind it): run in $HOME instead, and say so.
		if err := unix.Chdir(p.CwdFallback); err != nil {
			return stageErr("chdir", "chdir", p.CwdFallback, err)
		}
		log.Warn("the current directory is not visible in the jail; running in "+p.CwdFallback, "cwd", p.Cwd)
	}
	// Non-dumpable: processes of the jail (same uid) cannot ptrace init
	// or open its /proc/1/mem, fds or exe (ptrace(2), "access mode
	// checks"); the payload also has no CAP_SYS_PTRACE to override it.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return stageErr("prctl", "PR_SET_DUMPABLE", "", err)
	}
	return nil
}

func stageErr(step, op, path string, err error) *StageError {
	se := &StageError{Step: step, Op: op, Path: path}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		se.Errno = errno
	} else if err != nil {
		se.Detail = err.Error()
	}
	return se
}

// reap waits for every child of init; it returns the payload's status once
// the payload has exited and every other process of the jail is gone. A
// stop of the payload is reported to onStop.
func reap(payload int, onStop func(syscall.Signal)) (unix.WaitStatus, unix.Rusage) {
	var ws, pws unix.WaitStatus
	var ru, pru unix.Rusage
	for {
		pid, err := unix.Wait4(-1, &ws, unix.WUNTRACED, &ru)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return pws, pru // ECHILD: nothing left
		}
		if ws.Stopped() {
			if pid == payload {
				onStop(ws.StopSignal())
			}
			continue
		}
		if pid == payload {
			pws, pru = ws, ru
			// The payload is done: nothing else of the jail may outlive
			// it. kill(-1) from init reaches every process in its pid
			// namespace but itself (kill(2)).
			unix.Kill(-1, unix.SIGKILL)
		}
	}
}

// epoch is the clock stage-2's phases are logged on: the parent's start
// (Plan.TraceEpoch) when it was sent, else stage-2's own start.
var epoch = processStart

// sinceMs is the time since the epoch in ms; at(processStart) is when
// stage-2's runtime was up.
func sinceMs(t time.Time) float64 { return float64(t.Sub(epoch).Microseconds()) / 1000 }

// setForeground makes pgid the terminal's foreground process group.
// tcsetpgrp(3) from a background group stops the caller with SIGTTOU unless
// the signal is blocked or ignored; stage-2 does not ignore it (the payload
// would inherit that), so it is blocked on this locked thread for the call.
func setForeground(pgid int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set, old unix.Sigset_t
	sig := uint(unix.SIGTTOU) - 1
	set.Val[sig/64] |= 1 << (sig % 64)
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old); err != nil {
		return err
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	return unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, pgid)
}
