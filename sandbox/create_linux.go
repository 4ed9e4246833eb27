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

// Create builds the jail of p, an OCI container (p.Gate set), and returns
// once its init has built everything and waits at the start gate: init's
// pid (in warden's pid namespace). The jail outlives warden: its init is
// not tied to warden's life (no PR_SET_PDEATHSIG), it is reparented to
// whoever reaps warden's orphans (conmon, a containerd shim), and it exits
// with the payload's status. Nothing supervises it afterwards: `warden oci
// start`, `kill` and `delete` act on it by pid.
//
// A failed setup is returned as a *StageError, with init gone.
func Create(p *Plan, logw io.Writer) (pid int, err error) {
	if p.Gate == "" {
		return 0, bug(errors.New("Create without a start gate"))
	}
	if p.LimitsMode != cgroup.Off && len(p.Limits.Requested()) > 0 {
		return 0, &HintError{Msg: "oci: linux.resources asks for limits " + fmt.Sprint(p.Limits.Requested()) + ", which `warden oci` does not apply yet",
			Hint: []string{"remove the limits from config.json, or run the command with `warden run --memory ... --pids ...`"}}
	}
	l := &launch{p: p, logw: logw, start: time.Now(), payloadFD: -1}
	l.phase = l.tracer()
	if err := l.openSync(); err != nil {
		return 0, err
	}
	defer l.closeSync()
	if _, err := l.setupCgroup(); err != nil {
		return 0, err
	}
	if err := l.startInit(); err != nil {
		return 0, err
	}
	if err := l.configure(); err != nil {
		l.kill()
		return 0, err
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
			return 0, fmt.Errorf("the container's init died during setup: %w", err)
		}
		if m.Kind == jailprog.MsgNotify && m.Step == jailprog.NotifyConsole {
			err := sendConsole(p.Console, m.FD)
			unix.Close(m.FD)
			if err != nil {
				l.kill()
				return 0, fmt.Errorf("--console-socket %s: %w", p.Console, err)
			}
			continue
		}
		if m.FD >= 0 {
			unix.Close(m.FD)
		}
		switch {
		case m.Kind == jailprog.MsgError:
			se := l.stageError(m)
			<-l.done
			return 0, se
		case m.Kind == jailprog.MsgNotify && m.Step == jailprog.NotifyReady:
			l.phase("ready at the start gate")
			return l.pid, nil
		}
	}
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
