package sandbox

import (
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox/cgroup"
	"github.com/warden-sandbox/warden/sandbox/jailprog"
)

// Created is a container Create has built, its init waiting at the gate.
type Created struct {
	Pid int // init's pid, in warden's pid namespace
	// Leaf is the container's cgroup (Path() "" for none). It outlives
	// warden: keep Leaf.Record() in the container's state and Close it, or
	// Remove it when the container is abandoned.
	Leaf *cgroup.Leaf
	// Limits is the state of each limit, as Result.Limits; Warnings what
	// the report and the log should say about the cgroup.
	Limits   map[string]string
	Warnings []Warning
}

// Create builds the jail of p, an OCI container (p.Gate set), and returns
// once its init has built everything and waits at the start gate. The jail
// outlives warden: its init is not tied to warden's life (no
// PR_SET_PDEATHSIG), it is reparented to whoever reaps warden's orphans
// (conmon, a containerd shim), and it exits with the payload's status.
// Nothing supervises it afterwards: `warden oci start`, `kill` and `delete`
// act on it by pid, `pause`, `update` and `delete` on its cgroup leaf.
//
// The leaf, named cgroupName, is made when p asks for limits (then every
// limit is enforced, or Create fails with the *cgroup.NotEnforcedError) or,
// in BestEffort mode, when a delegated cgroup2 subtree allows it. init is
// born in it (CLONE_INTO_CGROUP), and with a leaf jailprog clones init as
// a copy of warden rather than sharing its memory, so memory.oom.group
// cannot take warden with the container.
//
// With createContainer hooks (p.Hooks), init stops before them once its
// mounts are made; Create then calls p.Hooks.Runtime (the runtime's own
// hooks) and sends init the state the hooks read (runtimeHooks).
//
// A failed setup is returned (a *StageError from init, or the error of
// p.Hooks.Runtime), with init and the leaf gone.
func Create(p *Plan, cgroupName string, logw io.Writer) (c *Created, err error) {
	if p.Gate == "" {
		return nil, bug(errors.New("Create without a start gate"))
	}
	l := &launch{p: p, logw: logw, start: time.Now(), payloadFD: -1}
	l.phase = l.tracer()
	if err := l.openSync(); err != nil {
		return nil, err
	}
	defer l.closeSync()
	// Host side, before any namespace, as for `warden run` (setupCgroup).
	leaf, cwarns, err := cgroup.Setup(p.Limits, p.LimitsMode, cgroupName)
	if err != nil {
		return nil, err
	}
	l.leaf = leaf
	defer func() {
		if err != nil {
			if rerr := leaf.Remove(); rerr != nil {
				err = errors.Join(err, fmt.Errorf("remove the container's cgroup: %w", rerr))
			}
		}
	}()
	c = &Created{Leaf: leaf, Limits: leaf.Applied()}
	for _, w := range cwarns {
		c.Warnings = append(c.Warnings, Warning{What: "limit " + w.Limit + " not enforced", Reason: w.Reason + "; " + w.Fix, Loud: true})
	}
	if p.LimitsMode == cgroup.BestEffort && leaf.Path() == "" {
		c.Warnings = append(c.Warnings, Warning{What: "no cgroup of its own",
			Reason: "config.json names a cgroupsPath, but no delegated cgroup2 subtree could be had here (see `warden check`); the container runs without one: pause, resume and update fail, and there is no cgroup accounting"})
	}
	if err := l.startInit(); err != nil {
		return nil, err
	}
	if err := l.configure(); err != nil {
		l.kill()
		return nil, err
	}
	if h := p.Hooks; h != nil && len(h.Create) == 0 && len(h.Start) > 0 {
		// Queued for the payload, after "go".
		if err := sendState(l.syncP, h, "created", l.pid); err != nil {
			l.kill()
			return nil, err
		}
	}
	// The network helper, if any, lives with warden: an OCI engine brings
	// its own network (a namespace by path).
	for {
		m, err := jailprog.Recv(l.syncP)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// init is gone without a word (killed).
			l.kill()
			return nil, fmt.Errorf("the container's init died during setup: %w", err)
		}
		if m.Kind == jailprog.MsgNotify && m.Step == jailprog.NotifyConsole {
			err := sendConsole(p.Console, m.FD)
			unix.Close(m.FD)
			if err != nil {
				l.kill()
				return nil, fmt.Errorf("--console-socket %s: %w", p.Console, err)
			}
			continue
		}
		if m.FD >= 0 {
			unix.Close(m.FD)
		}
		switch {
		case m.Kind == jailprog.MsgNotify && m.Step == jailprog.NotifyHooks:
			if err := runtimeHooks(l.syncP, p.Hooks, l.pid); err != nil {
				l.kill()
				return nil, err
			}
		case m.Kind == jailprog.MsgError:
			se := l.stageError(m)
			<-l.done
			return nil, se
		case m.Kind == jailprog.MsgNotify && m.Step == jailprog.NotifyReady:
			l.phase("ready at the start gate")
			c.Pid = l.pid
			return c, nil
		}
	}
}

// runtimeHooks runs the runtime's own hooks (ContainerHooks.Runtime: prestart,
// createRuntime) while init waits with its mounts made, then sends init the
// state for its createContainer hooks and queues the one for the
// startContainer hooks. Only init's pid is new in them: warden knows it,
// init does not (it is 1 in its own namespace).
func runtimeHooks(syncFD int, h *ContainerHooks, pid int) error {
	if h.Runtime != nil {
		if err := h.Runtime(pid); err != nil {
			return err
		}
	}
	if err := sendState(syncFD, h, "creating", pid); err != nil {
		return err
	}
	if len(h.Start) > 0 {
		return sendState(syncFD, h, "created", pid)
	}
	return nil
}

// sendState sends the container's state for its hooks with status.
func sendState(syncFD int, h *ContainerHooks, status string, pid int) error {
	if _, err := unix.Write(syncFD, h.State(status, pid)); err != nil {
		return fmt.Errorf("send the container's state to its hooks: %w", err)
	}
	return nil
}

// StartHookFailure is the failure of a startContainer hook from what the
// container's process reported on the start gate (Plan.Hooks).
func StartHookFailure(report []byte) error {
	r, err := jailprog.ParseReport(report)
	if err != nil {
		return err
	}
	return r
}

// sendConsole hands the terminal's master to the engine as runc does: one
// message on the console socket, the terminal's name as data and the fd by
// SCM_RIGHTS.
func sendConsole(path string, fd int) error {
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	if err := unix.Connect(s, &unix.SockaddrUnix{Name: path}); err != nil {
		return err
	}
	name := "/dev/ptmx"
	if n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN); err == nil {
		name = fmt.Sprintf("/dev/pts/%d", n)
	}
	return unix.Sendmsg(s, []byte(name), unix.UnixRights(fd), nil, 0)
}
