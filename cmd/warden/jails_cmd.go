//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox"
	"github.com/warden-sandbox/warden/sandbox/jails"
)

// Jails that persist (FreeBSD's jail -c persist, jls, jexec, jail -r):
//
//	warden run -d [--name N] ... -- CMD   start a jail, return once CMD runs
//	warden ls [--json]                    list them
//	warden exec N [--env K=V] [--chdir D] -- CMD
//	warden logs N [-f]                    the jail's log (its command's output)
//	warden stop N [--timeout 10s]         SIGTERM, then the whole jail; state removed
//
// `run -d` starts warden again as the jail's supervisor (`run --supervise
// N`), detached (its own session, stdin /dev/null, output to the jail's
// log), and waits on a pipe (fd 3 of the supervisor) for "ok": the jail's
// command runs and its state is written. The supervisor is the ordinary
// `warden run`: it tears the jail down when the command ends and then marks
// the state stopped.

// detach is `warden run -d`: it starts the supervisor and returns once the
// command runs, printing the jail's name.
func detach(o *runOpts, args []string, stdout, stderr io.Writer) int {
	name := o.name
	if name == "" {
		name = jails.NewName()
	}
	if why := jails.CheckName(name); why != "" {
		return fail(stderr, sandbox.Usagef("--name: %s", why))
	}
	if len(o.passFDs) > 0 {
		return fail(stderr, sandbox.Usagef("--pass-fd cannot be used with -d: the jail outlives this command"))
	}
	root, err := jails.Root()
	if err != nil {
		return fail(stderr, err)
	}
	dir := jails.Dir(root, name)
	unlock, err := jails.Lock(dir)
	if err != nil {
		return fail(stderr, fmt.Errorf("jail %s: %w", name, err))
	}
	defer unlock()
	if st, err := jails.Read(dir); err == nil && st.State == jails.Running && jails.Alive(st.SupervisorPid, st.SupervisorStart) {
		return fail(stderr, sandbox.Usagef("jail %s is running; choose another --name, or `warden stop %s` first", name, name))
	}
	os.Remove(filepath.Join(dir, "state.json"))
	log, err := os.OpenFile(filepath.Join(dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fail(stderr, fmt.Errorf("jail %s: log: %w", name, err))
	}
	defer log.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return fail(stderr, err)
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fail(stderr, err)
	}
	defer r.Close()
	// The supervisor gets this command's flags less -d and --name (the
	// flags end where the command begins: flags are not interspersed).
	flagPart := args[:len(args)-len(o.fs.Args())]
	sargs := []string{"run", "--supervise", name}
	for i := 0; i < len(flagPart); i++ {
		a := flagPart[i]
		switch {
		case a == "-d" || a == "--detach" || a == "--":
			continue
		case a == "--name":
			i++
			continue
		case strings.HasPrefix(a, "--name="):
			continue
		}
		sargs = append(sargs, a)
	}
	// "--": the command stays a command, whatever it looks like.
	sargs = append(append(sargs, "--"), o.fs.Args()...)
	cmd := exec.Command("/proc/self/exe", sargs...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, log, log
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		os.RemoveAll(dir)
		return fail(stderr, fmt.Errorf("start the jail's supervisor: %w", err))
	}
	line, _ := bufio.NewReader(r).ReadString('\n')
	if line != "ok\n" {
		// The supervisor failed before the command ran: what it said is
		// in the log, which goes with the state.
		cmd.Wait()
		b, _ := os.ReadFile(filepath.Join(dir, "log"))
		stderr.Write(b)
		os.RemoveAll(dir)
		if ee, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ee.Exited() && ee.ExitStatus() != 0 {
			return ee.ExitStatus()
		}
		return exitWarden
	}
	cmd.Process.Release()
	fmt.Fprintln(stdout, name)
	return 0
}

// supervisorStarted is Plan.Started of `run --supervise NAME`: it records
// the running jail and tells `run -d` (fd 3) that the command runs.
func supervisorStarted(name string, plan *sandbox.Plan, stderr io.Writer) func(sandbox.StartInfo) {
	return func(si sandbox.StartInfo) {
		root, err := jails.Root()
		if err != nil {
			fmt.Fprintf(stderr, "warden: error: %v\n", err)
			return
		}
		execInfo, _ := json.Marshal(si.Exec)
		st := &jails.State{Name: name, State: jails.Running, Pid: si.InitPid, SupervisorPid: os.Getpid(),
			Created: time.Now().UTC().Truncate(time.Second), Command: plan.Argv, Policy: plan.Policy.Name,
			Network: plan.Net, Limits: si.Limits, Exec: execInfo}
		st.InitStart, _ = jails.StartTime(si.InitPid)
		st.SupervisorStart, _ = jails.StartTime(os.Getpid())
		// run -d holds the lock until it has read "ok": this is the one
		// writer until then.
		if err := jails.Write(jails.Dir(root, name), st); err != nil {
			fmt.Fprintf(stderr, "warden: error: jail %s: %v\n", name, err)
			return
		}
		if f := os.NewFile(3, "run -d"); f != nil {
			f.WriteString("ok\n")
			f.Close()
		}
	}
}

// supervisorStopped marks the jail stopped once its command has ended.
func supervisorStopped(name string, res *sandbox.Result) {
	root, err := jails.Root()
	if err != nil {
		return
	}
	dir := jails.Dir(root, name)
	// No state: the command never ran (run -d, which holds the lock until
	// it hears from us, reports the failure and removes the directory).
	if _, err := jails.Read(dir); err != nil {
		return
	}
	unlock, err := jails.Lock(dir)
	if err != nil {
		return
	}
	defer unlock()
	st, err := jails.Read(dir)
	if err != nil {
		return // removed by stop meanwhile
	}
	st.State = jails.Stopped
	if res != nil {
		st.Exit = string(res.Ending)
		switch res.Ending {
		case sandbox.EndExit:
			st.Exit = fmt.Sprintf("exit %d", res.Code)
		case sandbox.EndSignal:
			st.Exit = "signal " + unix.SignalName(res.Signal)
		}
	}
	jails.Write(dir, st)
}

// lookup reads jail name's state, or fails with one line.
func lookup(name string) (string, *jails.State, error) {
	if why := jails.CheckName(name); why != "" {
		return "", nil, sandbox.Usagef("%s", why)
	}
	root, err := jails.Root()
	if err != nil {
		return "", nil, err
	}
	dir := jails.Dir(root, name)
	st, err := jails.Read(dir)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, sandbox.Usagef("no jail %s; `warden ls` lists them", name)
	}
	if err != nil {
		return "", nil, err
	}
	if st.State != jails.Stopped && !jails.Alive(st.SupervisorPid, st.SupervisorStart) {
		jails.Forget(dir)
		return "", nil, sandbox.Usagef("no jail %s (its supervisor is gone; its state was removed)", name)
	}
	return dir, st, nil
}

func cmdLs(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("ls", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return fail(stderr, sandbox.Usagef("usage: warden ls [--json]"))
	}
	root, err := jails.Root()
	if err != nil {
		return fail(stderr, err)
	}
	list, err := jails.List(root)
	if err != nil {
		return fail(stderr, err)
	}
	if *asJSON {
		type entry struct {
			Name          string            `json:"name"`
			State         string            `json:"state"`
			Pid           int               `json:"pid"`
			SupervisorPid int               `json:"supervisor_pid"`
			Created       string            `json:"created"`
			Command       []string          `json:"command"`
			Policy        string            `json:"policy"`
			Network       string            `json:"network"`
			Limits        map[string]string `json:"limits,omitempty"`
			Exit          string            `json:"exit,omitempty"`
		}
		out := []entry{}
		for _, st := range list {
			out = append(out, entry{st.Name, st.State, st.Pid, st.SupervisorPid, st.Created.Format(time.RFC3339),
				st.Command, st.Policy, st.Network, st.Limits, st.Exit})
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tPID\tCREATED\tCOMMAND")
	for _, st := range list {
		state := st.State
		if st.Exit != "" {
			state += " (" + st.Exit + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", st.Name, state, st.Pid, st.Created.Local().Format(time.DateTime), strings.Join(st.Command, " "))
	}
	tw.Flush()
	return 0
}

func cmdStop(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("stop", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	timeout := fs.Duration("timeout", 10*time.Second, "time between SIGTERM to the command and killing the whole jail")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return fail(stderr, sandbox.Usagef("usage: warden stop NAME [--timeout 10s]"))
	}
	name := fs.Arg(0)
	dir, st, err := lookup(name)
	if err != nil {
		return fail(stderr, err)
	}
	// One stop at a time.
	sl, err := os.OpenFile(filepath.Join(dir, "stop.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fail(stderr, err)
	}
	defer sl.Close()
	if unix.Flock(int(sl.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return fail(stderr, sandbox.Usagef("jail %s is being stopped by another `warden stop`", name))
	}
	if st.State == jails.Paused {
		// A frozen or stopped jail acts on nothing: thaw it first.
		var info sandbox.ExecInfo
		if json.Unmarshal(st.Exec, &info) == nil {
			sandbox.Pause(info, filepath.Join(dir, jails.ExecSocket), false, true)
		}
	}
	if st.State != jails.Stopped {
		// The supervisor passes SIGTERM to the command (and continues it);
		// after the timeout the jail's init is killed, which the kernel
		// turns into the death of every process of the jail, and the
		// supervisor tears down the rest.
		jails.Kill(st.SupervisorPid, st.SupervisorStart, unix.SIGTERM)
		if !waitGone(st.SupervisorPid, st.SupervisorStart, *timeout) {
			jails.Kill(st.Pid, st.InitStart, unix.SIGKILL)
			if !waitGone(st.SupervisorPid, st.SupervisorStart, 5*time.Second) {
				jails.Kill(st.SupervisorPid, st.SupervisorStart, unix.SIGKILL)
				waitGone(st.SupervisorPid, st.SupervisorStart, 5*time.Second)
			}
		}
	}
	if err := jails.Forget(dir); err != nil {
		return fail(stderr, fmt.Errorf("jail %s: remove its state: %w", name, err))
	}
	fmt.Fprintln(stdout, name)
	return 0
}

func waitGone(pid int, start uint64, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !jails.Alive(pid, start) {
			return true
		}
	}
	return !jails.Alive(pid, start)
}

func cmdLogs(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("logs", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	follow := fs.BoolP("follow", "f", false, "keep printing while the jail runs")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return fail(stderr, sandbox.Usagef("usage: warden logs NAME [-f]"))
	}
	dir, st, err := lookup(fs.Arg(0))
	if err != nil {
		return fail(stderr, err)
	}
	f, err := os.Open(filepath.Join(dir, "log"))
	if err != nil {
		return fail(stderr, err)
	}
	defer f.Close()
	for {
		if _, err := io.Copy(stdout, f); err != nil {
			return fail(stderr, err)
		}
		if !*follow || st.State != jails.Running || !jails.Alive(st.SupervisorPid, st.SupervisorStart) {
			io.Copy(stdout, f)
			return 0
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func cmdExec(args []string, stdout, stderr io.Writer) int {
	sandbox.PauseGC()
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	sandbox.CatchSignals()
	fs := pflag.NewFlagSet("exec", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(false)
	env := fs.StringArray("env", nil, "set a variable `K=V` for the command (repeatable)")
	chdir := fs.String("chdir", "", "working directory in the jail (default: the jail's)")
	tty := fs.BoolP("tty", "t", false, "the command gets the terminal (stdin must be one)")
	logLevel := fs.String("log-level", "warn", "log `LEVEL`")
	err := fs.Parse(args)
	argv := fs.Args()
	if len(argv) > 1 && argv[1] == "--" {
		argv = append(argv[:1:1], argv[2:]...)
	}
	if err != nil || len(argv) < 2 {
		return fail(stderr, sandbox.Usagef("usage: warden exec NAME [--env K=V] [--chdir DIR] [-t] -- CMD [ARGS...]"))
	}
	for _, kv := range *env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fail(stderr, sandbox.Usagef("--env %q: write K=V", kv))
		}
	}
	if *tty {
		if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err != nil {
			return fail(stderr, sandbox.Usagef("-t: standard input is not a terminal"))
		}
	}
	name := argv[0]
	dir, st, err := lookup(name)
	if err != nil {
		return fail(stderr, err)
	}
	switch st.State {
	case jails.Paused:
		return fail(stderr, sandbox.Usagef("jail %s is paused; `warden resume %s` first", name, name))
	case jails.Stopped:
		return fail(stderr, sandbox.Usagef("jail %s is stopped (%s); `warden run -d --name %s` starts it again", name, st.Exit, name))
	}
	var info sandbox.ExecInfo
	if err := json.Unmarshal(st.Exec, &info); err != nil {
		return fail(stderr, fmt.Errorf("jail %s: its state has no exec information: %w", name, err))
	}
	res, err := sandbox.Exec(sandbox.ExecSpec{Info: info, Socket: filepath.Join(dir, jails.ExecSocket), Argv: argv[1:],
		Env: *env, Chdir: *chdir, LogLevel: *logLevel}, stderr)
	if res != nil {
		for _, w := range res.Warnings {
			fmt.Fprintf(stderr, "warden: warning: %s\n", w)
		}
	}
	return exitStatus(nil, res, err, stderr)
}

// cmdPause is `warden pause NAME` (freeze=true) and `warden resume NAME`.
func cmdPause(args []string, freeze bool, stdout, stderr io.Writer) int {
	verb := "resume"
	if freeze {
		verb = "pause"
	}
	fs := pflag.NewFlagSet(verb, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	limits := fs.String("limits", "required", "without a cgroup of the jail's own: required refuses, best-effort stops (continues) its processes with SIGSTOP (SIGCONT)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 || (*limits != "required" && *limits != "best-effort") {
		return fail(stderr, sandbox.Usagef("usage: warden %s NAME [--limits required|best-effort]", verb))
	}
	name := fs.Arg(0)
	dir, st, err := lookup(name)
	if err != nil {
		return fail(stderr, err)
	}
	from, to := jails.Running, jails.Paused
	if !freeze {
		from, to = jails.Paused, jails.Running
	}
	if st.State != from {
		return fail(stderr, sandbox.Usagef("jail %s is %s, not %s", name, st.State, from))
	}
	var info sandbox.ExecInfo
	if err := json.Unmarshal(st.Exec, &info); err != nil {
		return fail(stderr, fmt.Errorf("jail %s: its state has no cgroup information: %w", name, err))
	}
	degraded, err := sandbox.Pause(info, filepath.Join(dir, jails.ExecSocket), freeze, *limits == "best-effort" || !freeze)
	if errors.Is(err, sandbox.ErrNoCgroup) {
		return fail(stderr, fmt.Errorf("jail %s has no cgroup of its own, so it cannot be frozen", name),
			"start jails with a limit (e.g. --memory) where cgroup v2 is delegated (`warden check`), or use `warden pause --limits best-effort` to stop its processes with SIGSTOP instead")
	}
	if err != nil {
		return fail(stderr, fmt.Errorf("%s %s: %w", verb, name, err))
	}
	unlock, err := jails.Lock(dir)
	if err != nil {
		return fail(stderr, err)
	}
	defer unlock()
	if st, err = jails.Read(dir); err != nil {
		return fail(stderr, err)
	}
	st.State, st.Pause = to, ""
	if freeze {
		st.Pause = "cgroup.freeze"
		if degraded {
			st.Pause = "degraded: SIGSTOP"
			fmt.Fprintf(stderr, "warden: warning: jail %s has no cgroup of its own: its processes were stopped with SIGSTOP (its init goes on), not frozen\n", name)
		}
	}
	if err := jails.Write(dir, st); err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintln(stdout, name)
	return 0
}
