package sandbox

import (
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox/jailprog"
)

// ExecInfo is what `warden exec` needs to run a command in a running jail as
// its own command runs: the same environment, working directory, seccomp
// filter, capabilities and rlimits, in the same cgroup.
type ExecInfo struct {
	Env         []string `json:"env"`
	Cwd         string   `json:"cwd"`
	Seccomp     []byte   `json:"seccomp,omitempty"`
	SeccompName string   `json:"seccomp_name"`
	Caps        []int    `json:"caps,omitempty"`
	Rlimits     []Rlimit `json:"rlimits,omitempty"`
	// Cgroup is the jail's cgroup leaf ("" for none).
	Cgroup string `json:"cgroup,omitempty"`
}

// ExecInfo returns p's ExecInfo; cgroup is the jail's leaf.
func (p *Plan) ExecInfo(cgroup string) ExecInfo {
	return ExecInfo{Env: p.Env, Cwd: p.Cwd, Seccomp: p.Seccomp, SeccompName: p.SeccompName, Caps: p.Caps,
		Rlimits: p.Rlimits, Cgroup: cgroup}
}

// ExecSpec is a command to run in a running jail.
type ExecSpec struct {
	Info ExecInfo
	// Socket is where the jail's supervisor serves its namespaces; NSPid,
	// when Socket is "", a process of the jail whose /proc/PID/ns/* warden
	// may open (an OCI container's process: no supervisor serves them).
	Socket string
	NSPid  int
	// Detach returns once the command runs (oci exec --detach): Result's
	// PayloadPid names it; it is reparented to whoever reaps warden's
	// orphans.
	Detach bool
	// UID and GID, for an NSPid exec, are the ids the command takes in the
	// container (OCI process.user).
	UID, GID int
	// Console (with Detach) is an engine's console socket: the command
	// gets a terminal of the container's devpts, the engine its master.
	Console string
	Argv    []string
	// Env are K=V set on top of the jail's environment; Chdir replaces its
	// working directory.
	Env      []string
	Chdir    string
	LogLevel string
}

// Exec runs s.Argv in a running jail as the jail's own command runs, and
// supervises it as Run does: a raw child (no Go runtime, one thread, so it
// may join a user namespace) joins every namespace of the jail with setns(2)
// on the fds its supervisor serves (nsServer), and forks the command into
// the jail's pid namespace with the payload program of a run.
func Exec(s ExecSpec, logw io.Writer) (*Result, error) {
	if len(s.Argv) == 0 {
		return nil, Usagef("no command given: use warden exec NAME -- CMD [ARGS...]")
	}
	var nsfds []int
	var err error
	if s.Socket != "" {
		nsfds, err = fetchNamespaces(s.Socket)
	} else {
		nsfds, err = openNamespaces(s.NSPid)
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, fd := range nsfds {
			unix.Close(fd)
		}
	}()
	env := append([]string{}, s.Info.Env...)
	for _, kv := range s.Env {
		k, _, _ := strings.Cut(kv, "=")
		env = append(removeVar(env, k), kv)
	}
	p := &Plan{Argv: s.Argv, Env: env, Cwd: s.Info.Cwd, Caps: s.Info.Caps, Rlimits: s.Info.Rlimits,
		Seccomp: s.Info.Seccomp, SeccompName: s.Info.SeccompName, KillGrace: 5 * time.Second, LogLevel: s.LogLevel}
	if s.Chdir != "" {
		p.Cwd = s.Chdir
	}
	if s.Socket == "" {
		p.Maps.InsideUID, p.Maps.InsideGID, p.SetIDs = s.UID, s.GID, true
		p.Console = s.Console
	}
	l := &launch{p: p, logw: logw, start: time.Now(), payloadFD: -1, exec: true}
	l.phase = l.tracer()
	if err := l.openSync(); err != nil {
		return nil, err
	}
	defer l.closeSync()
	p.Foreground = inForeground()
	l.res = &Result{Ending: EndSignal, Signal: unix.SIGKILL, Limits: map[string]string{}}
	sigs, stop := takeSignals()
	defer stop()
	joins := jailNamespaces
	if s.Socket == "" {
		// An OCI container shares namespaces with whoever made it where
		// its config says so (podman's user namespace, the host's cgroup
		// namespace): those are warden's own already, and setns(2) into
		// them fails (one's own user namespace) or needs privilege over
		// their owner.
		nsfds, joins = withoutOwn(nsfds)
	}
	initProg, err := execProgram(p, l.syncC, nsfds, joins)
	if err != nil {
		return nil, err
	}
	payloadProg, err := payloadProgram(p)
	if err != nil {
		return nil, err
	}
	cgfd := -1
	if s.Info.Cgroup != "" {
		// Born in the jail's cgroup: the jail's limits apply to it too.
		if cgfd, err = unix.Open(s.Info.Cgroup, unix.O_DIRECTORY|unix.O_PATH|unix.O_CLOEXEC, 0); err != nil {
			return nil, fmt.Errorf("the jail's cgroup %s: %w", s.Info.Cgroup, err)
		}
		defer unix.Close(cgfd)
	}
	child := jailprog.New(jailprog.Spec{Init: initProg, Payload: payloadProg, CgroupFD: cgfd,
		SyncFD: 3 + len(nsfds), Exec: true, Detach: s.Detach})
	if err := l.startChild(child); err != nil {
		return nil, fmt.Errorf("join the jail: %w", err)
	}
	if cgfd >= 0 && !child.InCgroup {
		l.kill()
		return nil, fmt.Errorf("the jail's cgroup %s: clone3 is refused here", s.Info.Cgroup)
	}
	if _, err := unix.Write(l.syncP, []byte("go")); err != nil {
		l.kill()
		return nil, fmt.Errorf("start: %w", err)
	}
	if s.Detach {
		return l.detached()
	}
	return l.supervise(sigs)
}

// detached waits until the command runs, and returns its pid.
func (l *launch) detached() (*Result, error) {
	for {
		m, err := jailprog.Recv(l.syncP)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			l.kill()
			return nil, fmt.Errorf("the exec child died before the command ran: %w", err)
		}
		switch m.Kind {
		case jailprog.MsgError:
			se := l.stageError(m)
			<-l.done
			return nil, se
		case jailprog.MsgStarted:
			l.started(m)
			l.res.PayloadPid = l.payloadPid
			return l.res, nil
		case jailprog.MsgNotify:
			if m.Step == jailprog.NotifyConsole && m.FD >= 0 {
				err := sendConsole(l.p.Console, m.FD)
				unix.Close(m.FD)
				if err != nil {
					l.kill()
					return nil, fmt.Errorf("--console-socket %s: %w", l.p.Console, err)
				}
				continue
			}
			if m.FD >= 0 {
				unix.Close(m.FD)
			}
		default:
			if m.FD >= 0 {
				unix.Close(m.FD)
			}
		}
	}
}

// withoutOwn drops (and closes) the namespaces warden is in already.
func withoutOwn(nsfds []int) ([]int, []nsFile) {
	var fds []int
	var joins []nsFile
	for i, fd := range nsfds {
		var self, theirs unix.Stat_t
		if unix.Stat("/proc/self/ns/"+jailNamespaces[i].file, &self) == nil && unix.Fstat(fd, &theirs) == nil &&
			self.Ino == theirs.Ino && self.Dev == theirs.Dev {
			unix.Close(fd)
			continue
		}
		fds, joins = append(fds, fd), append(joins, jailNamespaces[i])
	}
	return fds, joins
}

// openNamespaces opens the namespaces of process pid, in jailNamespaces'
// order.
func openNamespaces(pid int) ([]int, error) {
	var fds []int
	for _, ns := range jailNamespaces {
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/%s", pid, ns.file), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			for _, f := range fds {
				unix.Close(f)
			}
			return nil, fmt.Errorf("open the container's %s namespace: %w", ns.file, err)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// execProgram is the exec child's program: its fds (the jail's namespaces
// at 3, 4, ..., the sync socket after them), "go", then setns into each
// namespace, the user namespace first, and the jail's working directory.
func execProgram(p *Plan, syncFD int, nsfds []int, joins []nsFile) (*jailprog.Program, error) {
	b := jailprog.NewBuilder()
	goBuf := b.NewBuf(16)
	b.Prologue(syncFD, nsfds, goBuf, true)
	for i, ns := range joins {
		b.Context("exec", "", "join the jail's "+ns.file+" namespace (setns)")
		b.Call(unix.SYS_SETNS, "setns", jailprog.Int(3+i), jailprog.I(uintptr(ns.flag), "CLONE_NEW"+strings.ToUpper(ns.file)))
	}
	b.Call(unix.SYS_CLOSE_RANGE, "close_range", jailprog.Int(3), jailprog.Int(3+len(nsfds)-1), jailprog.Int(0))
	b.Context("chdir", p.Cwd, "chdir")
	b.Call(unix.SYS_CHDIR, "chdir", b.Str(p.Cwd))
	if p.Console != "" {
		consoleSteps(b)
	}
	// As the jail's init: nothing in the jail may ptrace or read it.
	b.Context("prctl", "", "PR_SET_DUMPABLE")
	b.Call(unix.SYS_PRCTL, "prctl", jailprog.I(unix.PR_SET_DUMPABLE, "PR_SET_DUMPABLE"), jailprog.Int(0))
	return b.Program()
}

func removeVar(env []string, k string) []string {
	out := env[:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, k+"=") {
			out = append(out, kv)
		}
	}
	return out
}
