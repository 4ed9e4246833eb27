package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox/jailprog"
	"github.com/warden-sandbox/warden/seccomp"
)

// markCwdFallback is the mark init's program sets when the current
// directory was not visible in the jail and it went to Plan.CwdFallback.
const markCwdFallback = "cwd-fallback"

// goBufSize bounds the parent's "go" message (the network helper's
// resolv.conf).
const goBufSize = 4 << 10

// Programs compiles p into the jail's two programs: init's (fds, "go", host
// name, loopback, mounts, createContainer hooks, pivot_root, working
// directory) and the payload's (process group, terminal, rlimits,
// capabilities, no_new_privs, seccomp last of the restrictions,
// startContainer hooks, execve). syncFD is the number of the child's end of the sync socket
// in warden; the programs move it after the passed fds.
func Programs(p *Plan, syncFD int) (init, payload *jailprog.Program, err error) {
	if p.Hooks != nil {
		for _, st := range []string{"creating", "created"} {
			if _, err := stateSize(p, st); err != nil {
				return nil, nil, err
			}
		}
	}
	init, err = initProgram(p, syncFD)
	if err != nil {
		return nil, nil, err
	}
	payload, err = payloadProgram(p)
	return init, payload, err
}

func initProgram(p *Plan, syncFD int) (*jailprog.Program, error) {
	b := jailprog.NewBuilder()
	goBuf := b.NewBuf(goBufSize)
	goLen := b.Prologue(syncFD, p.PassFDs, goBuf, p.Gate == "")
	var beforePivot func()
	if p.Hooks != nil && len(p.Hooks.Create) > 0 {
		// In the container's namespaces, with its mounts made and the
		// host's file system still there (runtime-spec: after
		// createRuntime, before pivot_root). The parent runs the
		// runtime's hooks when init tells it, then sends the state.
		beforePivot = func() {
			b.Context("hooks", "", "tell warden")
			b.Tell(jailprog.NotifyHooks, "hooks")
			state, stateLen := readState(b, p, "creating")
			for i, h := range p.Hooks.Create {
				b.Hook(fmt.Sprintf("createContainer hook %d (%s)", i, h.Path), h.Path, h.Args, h.Env, h.Timeout, state, stateLen)
			}
		}
	}
	for _, ns := range p.JoinNS {
		// Before anything else: the namespace an OCI engine made for the
		// container (its network).
		b.Context("setns", ns.Path, ns.Type+" namespace")
		r := b.Reg()
		b.Call(unix.SYS_OPENAT, "openat", jailprog.I(atFDCWD, "AT_FDCWD"), b.Str(ns.Path), jailprog.I(unix.O_RDONLY|unix.O_CLOEXEC, "O_RDONLY|O_CLOEXEC"), jailprog.Int(0)).Out = r
		b.Call(unix.SYS_SETNS, "setns", jailprog.R(r), jailprog.I(ns.Flag, nsFlagNames[ns.Flag]))
		b.Close(r)
	}
	// "warden-init" in ps instead of "warden".
	b.Context("init", "", "name")
	b.Call(unix.SYS_PRCTL, "prctl", jailprog.I(unix.PR_SET_NAME, "PR_SET_NAME"), b.Str("warden-init"))
	// Its own process group: job control aimed at warden's group (a
	// shell's kill -STOP %1) does not stop the jail's init.
	b.Call(unix.SYS_SETPGID, "setpgid", jailprog.Int(0), jailprog.Int(0))
	if p.Cloneflags&unix.CLONE_NEWUTS != 0 {
		// (An OCI config's "" too, as runc sets it.)
		b.Context("hostname", p.Hostname, "sethostname")
		b.Call(unix.SYS_SETHOSTNAME, "sethostname", b.Str(p.Hostname), jailprog.Int(len(p.Hostname)))
	}
	if p.Cloneflags&syscall.CLONE_NEWNET != 0 {
		// "lo" of the new network namespace up, with one ioctl instead
		// of ip(8).
		b.Context("network", "lo", "SIOCSIFFLAGS lo up")
		s := b.Reg()
		b.Call(unix.SYS_SOCKET, "socket", jailprog.I(unix.AF_INET, "AF_INET"),
			jailprog.I(unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, "SOCK_DGRAM|SOCK_CLOEXEC"), jailprog.Int(0)).Out = s
		ifr := make([]byte, unix.IFNAMSIZ+24)
		copy(ifr, "lo")
		binary.NativeEndian.PutUint16(ifr[unix.IFNAMSIZ:], unix.IFF_UP|unix.IFF_LOOPBACK|unix.IFF_RUNNING)
		b.Call(unix.SYS_IOCTL, "ioctl", jailprog.R(s), jailprog.I(unix.SIOCSIFFLAGS, "SIOCSIFFLAGS"),
			b.Bytes(ifr, `{"lo", IFF_UP|IFF_LOOPBACK|IFF_RUNNING}`))
		b.Close(s)
	}
	gate := -1
	if p.Gate != "" {
		// The state directory that holds the start gate, opened while the
		// host's paths are still there.
		b.Context("gate", p.Gate, "open the state directory")
		gate = b.Reg()
		b.Call(unix.SYS_OPENAT, "openat", jailprog.I(atFDCWD, "AT_FDCWD"), b.Str(p.Gate),
			jailprog.I(unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, "O_PATH|O_DIRECTORY|O_CLOEXEC"), jailprog.Int(0)).Out = gate
	}
	b.Mounts(p.Mounts, p.Scratch, jailprog.Dynamic{Source: resolvSource, Buf: goBuf, Len: goLen}, beforePivot)
	b.Context("chdir", p.Cwd, "chdir")
	s := b.Call(unix.SYS_CHDIR, "chdir", b.Str(p.Cwd))
	if p.CwdFallback != "" {
		// The caller's current directory is not part of this jail's view
		// (a policy that does not bind it): run in the fallback instead,
		// and the parent says so.
		s.OkErrno = syscall.ENOENT
		g := b.Goto()
		s.Jump = b.Here()
		b.Mark(markCwdFallback)
		b.Context("chdir", p.CwdFallback, "chdir")
		b.Call(unix.SYS_CHDIR, "chdir", b.Str(p.CwdFallback))
		g.Jump = b.Here()
	}
	// Non-dumpable: processes of the jail (same uid) cannot ptrace init or
	// open its /proc/1/mem, fds or exe (ptrace(2), "access mode checks");
	// the payload also has no CAP_SYS_PTRACE to override it. Set last:
	// the parent writes the ID maps and the network helper opens
	// /proc/PID/ns/net before "go", which non-dumpable would refuse.
	b.Context("prctl", "", "PR_SET_DUMPABLE")
	b.Call(unix.SYS_PRCTL, "prctl", jailprog.I(unix.PR_SET_DUMPABLE, "PR_SET_DUMPABLE"), jailprog.Int(0))
	if p.Console != "" {
		consoleSteps(b)
	}
	if gate >= 0 {
		// An OCI container after create: built, and waiting for start.
		// The open for writing blocks until `warden oci start` opens
		// the fifo for reading (runc's exec.fifo).
		b.Context("gate", p.Gate, "wait for start")
		b.Tell(jailprog.NotifyReady, "ready")
		w := b.Reg()
		b.Call(unix.SYS_OPENAT, "openat", jailprog.R(gate), b.Str(GateFifo), jailprog.I(unix.O_WRONLY|unix.O_CLOEXEC, "O_WRONLY|O_CLOEXEC"), jailprog.Int(0)).Out = w
		b.Call(unix.SYS_WRITE, "write", jailprog.R(w), b.Bytes([]byte("0"), `"0"`), jailprog.Int(1))
		if p.Hooks != nil && len(p.Hooks.Start) > 0 {
			// Kept for the payload, whose startContainer hooks run
			// now: `start` reads on until the gate closes, and a
			// failed hook's report fails it.
			b.Call(unix.SYS_DUP3, "dup3", jailprog.R(w), jailprog.Int(GateFD), jailprog.I(unix.O_CLOEXEC, "O_CLOEXEC"))
		}
		b.Close(w)
		b.Close(gate)
	}
	return b.Program()
}

// maxState bounds the container's state that hooks get on stdin: it is
// written into an empty pipe before the hook runs, which must hold it
// all (64 KiB).
const maxState = 60 << 10

// stateSize is the size of the container's state for hooks (status: which
// of the parent's state messages, see Create), as large as init's pid can
// make it.
func stateSize(p *Plan, status string) (int, error) {
	if p.Hooks.State == nil {
		return 0, bug(errors.New("container hooks without a state"))
	}
	// The largest pid there can be (pid_max is at most 2^22).
	n := len(p.Hooks.State(status, 1<<22))
	if n > maxState {
		return 0, Usagef("config.json: the container's state for its hooks is %d bytes (its annotations), more than the %d warden passes", n, maxState)
	}
	return n, nil
}

// readState appends the read of the container's state for hooks from the
// sync socket, and returns its buffer and the register with its length.
func readState(b *jailprog.Builder, p *Plan, status string) (jailprog.Arg, int) {
	n, _ := stateSize(p, status) // checked by Programs
	buf := b.NewBuf(n)
	b.Context("hooks", "", "read the container's state ("+status+")")
	r := b.Reg()
	s := b.Call(unix.SYS_READ, "read", jailprog.I(uintptr(3+len(p.PassFDs)), "sync"), jailprog.BufArg(buf, "<state "+status+">"), jailprog.Int(n))
	s.Out, s.NonZero = r, true
	return jailprog.BufArg(buf, "<state "+status+">"), r
}

var nsFlagNames = map[uintptr]string{unix.CLONE_NEWNET: "CLONE_NEWNET", unix.CLONE_NEWIPC: "CLONE_NEWIPC", unix.CLONE_NEWUTS: "CLONE_NEWUTS"}

// consoleSteps open a pseudo-terminal of the container's own devpts
// (process.terminal): the payload gets the slave (at ConsoleFD, where its
// program finds it), the engine the master (sent to the console socket).
func consoleSteps(b *jailprog.Builder) {
	b.Context("console", "/dev/pts/ptmx", "open the container's pseudo-terminal")
	m := b.Reg()
	b.Call(unix.SYS_OPENAT, "openat", jailprog.I(atFDCWD, "AT_FDCWD"), b.Str("/dev/pts/ptmx"),
		jailprog.I(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, "O_RDWR|O_NOCTTY|O_CLOEXEC"), jailprog.Int(0)).Out = m
	b.Call(unix.SYS_IOCTL, "ioctl", jailprog.R(m), jailprog.I(unix.TIOCSPTLCK, "TIOCSPTLCK"), b.Bytes(make([]byte, 4), "&0"))
	s := b.Reg()
	b.Call(unix.SYS_IOCTL, "ioctl", jailprog.R(m), jailprog.I(unix.TIOCGPTPEER, "TIOCGPTPEER"), jailprog.I(unix.O_RDWR|unix.O_NOCTTY, "O_RDWR|O_NOCTTY")).Out = s
	b.Call(unix.SYS_DUP3, "dup3", jailprog.R(s), jailprog.Int(ConsoleFD), jailprog.Int(0))
	b.Close(s)
	b.Notify(m, jailprog.NotifyConsole, "console master")
	b.Close(m)
}

// ConsoleFD is where init leaves the slave of an OCI container's terminal
// for the payload (Plan.Console).
const ConsoleFD = 511

// GateFD is where init keeps the start gate open for the payload when it
// has startContainer hooks to run (jailprog.Program.ReportFD).
const GateFD = 510

// GateFifo is the start gate of a created OCI container, in its state
// directory (Plan.Gate).
const GateFifo = "exec.fifo"

// atFDCWD is AT_FDCWD as a system call argument.
var atFDCWD = func() uintptr { v := int64(unix.AT_FDCWD); return uintptr(v) }()

func payloadProgram(p *Plan) (*jailprog.Program, error) {
	b := jailprog.NewBuilder()
	var startState jailprog.Arg
	startLen := -1
	if p.Hooks != nil && len(p.Hooks.Start) > 0 {
		// Sent by `warden oci create` during setup and queued on the
		// sync socket since: init read the messages before it.
		startState, startLen = readState(b, p, "created")
		b.ReportTo(GateFD)
	}
	b.Context("terminal", "", "process group")
	sigset := func(sigs ...syscall.Signal) jailprog.Arg {
		var m uint64
		var names []string
		for _, s := range sigs {
			m |= 1 << (uint(s) - 1)
			names = append(names, unix.SignalName(s))
		}
		buf := make([]byte, 8)
		binary.NativeEndian.PutUint64(buf, m)
		return b.Bytes(buf, "{"+strings.Join(names, ",")+"}")
	}
	if p.Foreground {
		// tcsetpgrp(3) from a background process group raises SIGTTOU
		// unless it is blocked; the payload blocks it for the call only.
		b.Call(unix.SYS_RT_SIGPROCMASK, "rt_sigprocmask", jailprog.I(unix.SIG_SETMASK, "SIG_SETMASK"), sigset(syscall.SIGTTOU), jailprog.Null, jailprog.Int(8))
	}
	if p.Console != "" {
		// A session of its own, with the container's terminal as its
		// controlling terminal and as fds 0, 1 and 2.
		b.Context("console", "", "controlling terminal")
		b.Call(unix.SYS_SETSID, "setsid")
		b.Call(unix.SYS_IOCTL, "ioctl", jailprog.Int(ConsoleFD), jailprog.I(unix.TIOCSCTTY, "TIOCSCTTY"), jailprog.Int(0))
		for fd := 0; fd < 3; fd++ {
			b.Call(unix.SYS_DUP3, "dup3", jailprog.Int(ConsoleFD), jailprog.Int(fd), jailprog.Int(0))
		}
		b.Call(unix.SYS_CLOSE, "close", jailprog.Int(ConsoleFD))
	} else {
		b.Call(unix.SYS_SETPGID, "setpgid", jailprog.Int(0), jailprog.Int(0))
	}
	if p.Foreground {
		b.Context("terminal", "", "take the terminal's foreground")
		r := b.Reg()
		b.Call(unix.SYS_GETPID, "getpid").Out = r
		b.Call(unix.SYS_IOCTL, "ioctl", jailprog.Int(0), jailprog.I(unix.TIOCSPGRP, "TIOCSPGRP"), jailprog.RAddr(r))
		b.Call(unix.SYS_RT_SIGPROCMASK, "rt_sigprocmask", jailprog.I(unix.SIG_SETMASK, "SIG_SETMASK"), sigset(), jailprog.Null, jailprog.Int(8))
	}
	// Rlimits before capabilities (raising a hard limit needs
	// CAP_SYS_RESOURCE) and long before seccomp, so a profile that denies
	// prlimit64 cannot break the run.
	for _, r := range p.Rlimits {
		b.Context("rlimit", r.Name, "prlimit64")
		buf := make([]byte, 16)
		binary.NativeEndian.PutUint64(buf, r.Soft)
		binary.NativeEndian.PutUint64(buf[8:], r.Hard)
		b.Call(unix.SYS_PRLIMIT64, "prlimit64", jailprog.Int(0), jailprog.I(uintptr(r.Resource), "RLIMIT_"+strings.ToUpper(r.Name)),
			b.Bytes(buf, fmt.Sprintf("{%s, %s}", rlimitValue(r.Soft), rlimitValue(r.Hard))), jailprog.Null)
	}
	if p.SetIDs {
		// An OCI process.user other than the one the ID map makes of
		// the caller: set while the payload still has CAP_SETUID and
		// CAP_SETGID in its user namespace.
		b.Context("identity", "", fmt.Sprintf("uid %d gid %d", p.Maps.InsideUID, p.Maps.InsideGID))
		b.Call(unix.SYS_SETRESGID, "setresgid", jailprog.Int(p.Maps.InsideGID), jailprog.Int(p.Maps.InsideGID), jailprog.Int(p.Maps.InsideGID))
		b.Call(unix.SYS_SETRESUID, "setresuid", jailprog.Int(p.Maps.InsideUID), jailprog.Int(p.Maps.InsideUID), jailprog.Int(p.Maps.InsideUID))
	}
	dropCapabilities(b, p.Caps)
	// no_new_privs: setuid/setgid bits and file capabilities grant nothing
	// on exec, and it is required to load a seccomp filter unprivileged.
	b.Context("no_new_privs", "", "PR_SET_NO_NEW_PRIVS")
	b.Call(unix.SYS_PRCTL, "prctl", jailprog.I(unix.PR_SET_NO_NEW_PRIVS, "PR_SET_NO_NEW_PRIVS"), jailprog.Int(1), jailprog.Int(0), jailprog.Int(0), jailprog.Int(0))
	if len(p.Seccomp) > 0 {
		// seccomp last: the filter need not allow anything warden does
		// before this point (bubblewrap and runc do the same).
		ins, err := seccomp.Decode(p.Seccomp)
		if err != nil || len(ins) == 0 || len(ins) > 0xffff {
			return nil, bug(fmt.Errorf("seccomp program of %d instructions: %v", len(ins), err))
		}
		b.Context("seccomp", p.SeccompName, "seccomp(SECCOMP_SET_MODE_FILTER)")
		filter := b.Bytes(p.Seccomp, fmt.Sprintf("<%s: %d BPF instructions>", p.SeccompName, len(ins)))
		fprog := make([]byte, 16) // struct sock_fprog: len, then the filter's address
		binary.NativeEndian.PutUint16(fprog, uint16(len(ins)))
		fp := b.Bytes(fprog, fmt.Sprintf("{<%s: %d BPF instructions>}", p.SeccompName, len(ins)))
		b.Pointer(fp, 8, filter)
		flags, show := uintptr(0), "0"
		if p.SeccompAudit {
			flags, show = unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, "SECCOMP_FILTER_FLAG_NEW_LISTENER"
		}
		s := b.Call(unix.SYS_SECCOMP, "seccomp", jailprog.I(unix.SECCOMP_SET_MODE_FILTER, "SECCOMP_SET_MODE_FILTER"), jailprog.I(flags, show), fp)
		if p.SeccompAudit {
			// The supervisor lives outside the jail: the payload cannot
			// reach it, and it reads /proc of the host.
			r := b.Reg()
			s.Out = r
			b.Context("seccomp", "", "send the listener fd")
			b.Notify(r, jailprog.NotifyListener, "seccomp listener")
			b.Close(r)
		}
	}
	if startLen >= 0 {
		// After `start`, in the container as its process will run: its
		// root, uid, capabilities, no_new_privs and seccomp filter (runc
		// runs them there too).
		for i, h := range p.Hooks.Start {
			b.Hook(fmt.Sprintf("startContainer hook %d (%s)", i, h.Path), h.Path, h.Args, h.Env, h.Timeout, startState, startLen)
		}
	}
	b.Context("exec", p.Argv[0], "")
	b.Exec(execCandidates(p.Argv[0], p.Env), p.Argv, p.Env)
	return b.Program()
}

// dropCapabilities appends the reduction of every capability set to keep
// (normally empty).
func dropCapabilities(b *jailprog.Builder, keep []int) {
	b.Context("capabilities", "", "")
	var mask [2]uint32
	for _, c := range keep {
		mask[c/32] |= 1 << (c % 32)
	}
	// Ambient first: with them gone, exec as a non-root uid yields no
	// capabilities at all (capabilities(7), "transformation during
	// execve").
	b.Call(unix.SYS_PRCTL, "prctl", jailprog.I(unix.PR_CAP_AMBIENT, "PR_CAP_AMBIENT"), jailprog.I(unix.PR_CAP_AMBIENT_CLEAR_ALL, "PR_CAP_AMBIENT_CLEAR_ALL"),
		jailprog.Int(0), jailprog.Int(0), jailprog.Int(0))
	// The bounding set, because exec as uid 0 (--as-root) would otherwise
	// grant every capability in it. Needs CAP_SETPCAP: before capset.
	var keepMask uint64
	var names []string
	for _, c := range keep {
		keepMask |= 1 << uint(c)
		names = append(names, capName(c))
	}
	b.CapDrop(keepMask, "{"+strings.Join(names, ",")+"}")
	// Permitted, effective and inheritable down to the kept ones.
	hdr := make([]byte, 8)
	binary.NativeEndian.PutUint32(hdr, unix.LINUX_CAPABILITY_VERSION_3)
	data := make([]byte, 24)
	for i := 0; i < 2; i++ {
		for j := 0; j < 3; j++ {
			binary.NativeEndian.PutUint32(data[i*12+j*4:], mask[i])
		}
	}
	b.Call(unix.SYS_CAPSET, "capset", b.Bytes(hdr, "{_LINUX_CAPABILITY_VERSION_3, 0}"),
		b.Bytes(data, fmt.Sprintf("{effective=permitted=inheritable: %#x}", uint64(mask[1])<<32|uint64(mask[0]))))
	// Kept capabilities survive exec as a non-root uid only as ambient
	// ones (they must be permitted and inheritable to be raised).
	for _, c := range keep {
		b.Call(unix.SYS_PRCTL, "prctl", jailprog.I(unix.PR_CAP_AMBIENT, "PR_CAP_AMBIENT"), jailprog.I(unix.PR_CAP_AMBIENT_RAISE, "PR_CAP_AMBIENT_RAISE"),
			jailprog.Int(c), jailprog.Int(0), jailprog.Int(0))
	}
}

func rlimitValue(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return fmt.Sprint(v)
}

// execCandidates are the paths the payload tries, in order: argv0 itself
// when it names a path, else argv0 in each directory of the jail's PATH
// (from the plan's environment, not warden's own), as execvpe(3) does.
func execCandidates(argv0 string, env []string) []string {
	if strings.Contains(argv0, "/") {
		return []string{argv0}
	}
	pathEnv := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	var c []string
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		c = append(c, filepath.Join(dir, argv0))
	}
	return c
}

// ExplainProgram lists the jail programs p compiles to, as `warden policy
// explain --program` prints them: init's, then the payload's, one system
// call a line. "sync" is init's end of the socket to warden; the program
// as run differs only in that number and, when warden holds the
// terminal's foreground, in the payload's taking it.
func ExplainProgram(p *Plan) (string, error) {
	p.Foreground = inForeground()
	init, payload, err := Programs(p, 3)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# init (PID 1 of the jail): %d steps, %d fd registers\n", len(init.Steps), init.NRegs)
	b.WriteString(init.String())
	b.WriteString("# then: fork the payload (clone3 CLONE_VM|CLONE_VFORK|CLONE_PIDFD), send \"started\" with its pidfd,\n")
	b.WriteString("#       reap every process (wait4 -1 WUNTRACED), report stops, kill(-1, SIGKILL) when the payload exits\n")
	fmt.Fprintf(&b, "# payload: %d steps\n", len(payload.Steps))
	b.WriteString(payload.String())
	return b.String(), nil
}
