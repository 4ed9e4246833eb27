package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// reapEvent is one line the reaper writes on its status pipe (fd 3).
type reapEvent struct {
	Event      string   `json:"event"` // "exit" (the test ended) or "done"
	ExitCode   int      `json:"exit_code"`
	Signal     string   `json:"signal,omitempty"`
	TimedOut   bool     `json:"timed_out,omitempty"`
	DurationMS int64    `json:"duration_ms,omitempty"`
	Reaped     int      `json:"reaped,omitempty"` // orphans that ended by themselves and were reaped
	Killed     []string `json:"killed,omitempty"` // comm of every leftover process killed at the end
	Error      string   `json:"error,omitempty"`
}

// cmdReap runs the test program as a child subreaper:
//
//	oci-validate reap --timeout D --grace D --cwd DIR --stdout F --stderr F -- PROG [ARGS]
//
// stdin is the control pipe: when it reaches EOF (the parent has finished
// asking the runtime to delete its containers), every process still
// reparented to the reaper is killed and reaped. fd 3 receives reapEvents.
// Orphans are reaped as soon as they exit, as a real init would, so that a
// runtime never sees a zombie container init as still running.
func cmdReap(args []string) error {
	fs := flag.NewFlagSet("reap", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 60*time.Second, "time limit of the test program")
	grace := fs.Duration("grace", 5*time.Second, "time between SIGTERM and SIGKILL on timeout")
	cwd := fs.String("cwd", ".", "working directory of the test program")
	stdoutPath := fs.String("stdout", "", "file for the test's stdout")
	stderrPath := fs.String("stderr", "", "file for the test's stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 || *stdoutPath == "" || *stderrPath == "" {
		return errors.New("need --stdout, --stderr and a program")
	}
	status := os.NewFile(3, "status")
	emit := func(ev reapEvent) {
		b, _ := json.Marshal(ev)
		status.Write(append(b, '\n'))
	}

	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_CHILD_SUBREAPER: %w", err)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	outF, err := os.OpenFile(*stdoutPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	errF, err := os.OpenFile(*stderrPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}

	type waited struct {
		pid int
		ws  unix.WaitStatus
	}
	exits := make(chan waited, 64)
	go func() {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WALL, nil)
			switch {
			case err == unix.EINTR:
			case err == unix.ECHILD:
				time.Sleep(20 * time.Millisecond)
			case err != nil:
				time.Sleep(20 * time.Millisecond)
			case ws.Exited() || ws.Signaled():
				exits <- waited{pid, ws}
			}
		}
	}()

	control := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(control)
	}()

	start := time.Now()
	proc, err := os.StartProcess(fs.Arg(0), fs.Args(), &os.ProcAttr{
		Dir:   *cwd,
		Env:   os.Environ(),
		Files: []*os.File{devnull, outF, errF},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		emit(reapEvent{Event: "exit", ExitCode: -1, Error: err.Error()})
		emit(reapEvent{Event: "done"})
		return nil
	}
	devnull.Close()
	outF.Close()
	errF.Close()
	testPid := proc.Pid

	timer := time.NewTimer(*timeout)
	var killTimer <-chan time.Time
	timedOut := false
	testDone := false
	controlClosed := false
	reaped := 0
	for !(testDone && controlClosed) {
		select {
		case w := <-exits:
			if w.pid != testPid {
				reaped++
				continue
			}
			testDone = true
			ev := reapEvent{Event: "exit", TimedOut: timedOut, DurationMS: time.Since(start).Milliseconds()}
			if w.ws.Signaled() {
				ev.ExitCode = 128 + int(w.ws.Signal())
				ev.Signal = unix.SignalName(w.ws.Signal())
			} else {
				ev.ExitCode = w.ws.ExitStatus()
			}
			emit(ev)
			timer.Stop()
			killTimer = nil
		case <-timer.C:
			if !testDone {
				timedOut = true
				unix.Kill(-testPid, unix.SIGTERM)
				killTimer = time.After(*grace)
			}
		case <-killTimer:
			killTimer = nil
			if !testDone {
				unix.Kill(-testPid, unix.SIGKILL)
				unix.Kill(testPid, unix.SIGKILL)
			}
		case <-control:
			controlClosed = true
			control = nil
			if !testDone { // the parent went away: stop the test now
				timedOut = true
				unix.Kill(-testPid, unix.SIGKILL)
			}
		}
	}

	// Kill whatever is still reparented to us (leaked containers, sleeps,
	// hook processes), and whatever gets reparented as those die.
	var killed []string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		kids := childrenOf(os.Getpid())
		if len(kids) == 0 {
			break
		}
		for _, pid := range kids {
			killed = append(killed, comm(pid))
			unix.Kill(pid, unix.SIGKILL)
		}
		wait := time.After(500 * time.Millisecond)
	drain:
		for {
			select {
			case <-exits:
			case <-wait:
				break drain
			}
		}
	}
	sort.Strings(killed)
	ev := reapEvent{Event: "done", Reaped: reaped, Killed: killed}
	if kids := childrenOf(os.Getpid()); len(kids) > 0 {
		ev.Error = fmt.Sprintf("%d processes survived SIGKILL", len(kids))
	}
	emit(ev)
	return nil
}

// childrenOf lists the processes whose parent is pid, from /proc (this
// kernel has no /proc/PID/task/TID/children).
func childrenOf(parent int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces and parens.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		if f[0] == "Z" { // a zombie is reaped by the wait loop, not killed
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == parent {
			out = append(out, pid)
		}
	}
	return out
}

func comm(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}
