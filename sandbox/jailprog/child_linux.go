package jailprog

import (
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The runtime's fork hooks, as package syscall and gVisor use them:
// beforeFork blocks every signal on this thread and marks the goroutine so
// that any attempt to grow its stack fails loudly; afterFork undoes both in
// the parent. The child never returns to the runtime, so it needs no hook:
// its program resets every signal disposition and the mask itself.
//
//go:linkname beforeFork syscall.runtime_BeforeFork
func beforeFork()

//go:linkname afterFork syscall.runtime_AfterFork
func afterFork()

// Spec is what Start needs.
type Spec struct {
	// Init is the jail init's program: it ends where the payload is
	// forked. Payload is the payload's: it ends with OpExec.
	Init, Payload *Program
	// Cloneflags are the namespaces (CLONE_NEW*).
	Cloneflags uintptr
	// CgroupFD is the cgroup the jail is born in (CLONE_INTO_CGROUP), -1
	// for none.
	CgroupFD int
	// SyncFD is the child's number of its end of the sync socket after the
	// program's fd setup; PassFDs the number of fds passed to the payload
	// (3 ... 3+PassFDs-1 in init).
	SyncFD  int
	PassFDs int
	// Exec says the child is not the jail's init but joins a running jail
	// (warden exec): it reaps only its payload and kills nothing else.
	Exec bool
	// Detach (with Exec): the child exits once the payload runs, without
	// reaping it; the payload is reparented to whoever reaps warden's
	// orphans (oci exec --detach: conmon, a shim), which gets its status.
	Detach bool
	// ExitStatus makes init exit with the payload's status (its exit
	// code, or 128+N for a signal), as an OCI container's first process
	// does for whoever waits for it; otherwise init exits 0 after "exit".
	ExitStatus bool
}

// Child is a jail's init, started by Start.
type Child struct {
	init, payload *image
	spec          Spec

	// What the child writes and sends: all set up before the clone.
	msg    Message
	iov    unix.Iovec
	hdr    unix.Msghdr
	cmsg   []byte
	fdSlot *int32
	ws     int32
	ru     unix.Rusage

	initArgs, payloadArgs cloneArgs
	initPidfd, payPidfd   int32
	stack                 []byte // init's own stack (startShared)

	// Pid is init's pid (in warden's pid namespace), PidFD a pidfd of it.
	Pid, PidFD int
	// InCgroup says the child was born in Spec.CgroupFD's cgroup; false
	// when clone3 was refused and the caller must move it there.
	InCgroup bool
}

// New links the programs and prepares the clone; nothing is started.
func New(s Spec) *Child {
	c := &Child{init: link(s.Init), payload: link(s.Payload), spec: s, PidFD: -1}
	c.init.child, c.payload.child = c, c
	c.cmsg = make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&c.cmsg[0]))
	h.Level, h.Type = unix.SOL_SOCKET, unix.SCM_RIGHTS
	h.SetLen(unix.CmsgLen(4))
	c.fdSlot = (*int32)(unsafe.Pointer(&c.cmsg[unix.CmsgLen(0)]))
	c.iov.Base = (*byte)(unsafe.Pointer(&c.msg))
	c.iov.SetLen(wireSize)
	c.hdr.Iov = &c.iov
	c.hdr.SetIovlen(1)
	c.hdr.Control = &c.cmsg[0]

	c.initArgs = cloneArgs{
		flags:      uint64(s.Cloneflags) | unix.CLONE_PIDFD,
		pidfd:      uint64(uintptr(unsafe.Pointer(&c.initPidfd))),
		exitSignal: uint64(unix.SIGCHLD),
	}
	if s.CgroupFD >= 0 {
		c.initArgs.flags |= unix.CLONE_INTO_CGROUP
		c.initArgs.cgroup = uint64(s.CgroupFD)
	}
	c.payloadArgs = cloneArgs{
		flags:      unix.CLONE_PIDFD,
		pidfd:      uint64(uintptr(unsafe.Pointer(&c.payPidfd))),
		exitSignal: uint64(unix.SIGCHLD),
	}
	return c
}

// Start clones the jail's init into its namespaces. The child runs the
// init program (which waits for the parent's "go" before it touches
// anything), forks the payload, which runs the payload program up to its
// execve, and then reaps until the payload has exited.
//
// Preconditions:
//   - The calling goroutine is locked to its thread (runtime.LockOSThread)
//     and stays so until the child is reaped: the program sets
//     PR_SET_PDEATHSIG, which fires when the creating thread exits.
func (c *Child) Start() error {
	// Not in a cgroup of its own: there, memory.oom.group makes the OOM
	// killer kill every task of the jail's cgroup, and the kernel kills
	// every process that shares a victim's memory with it, warden too.
	if haveCloneVM && c.spec.CgroupFD < 0 {
		err := c.startShared()
		if err != syscall.EINVAL {
			return err
		}
		// A kernel that refuses CLONE_VM here: a copy of warden instead.
	}
	return c.startCopy()
}

// initStackSize is the stack of an init that shares warden's memory; its
// code is nosplit and shallow, and the payload's vfork runs on it too.
const initStackSize = 64 << 10

// startShared clones init with CLONE_VM and a stack of its own: no page
// table is copied and warden itself takes no copy-on-write faults later
// (each one a TLB shootdown). Init writes only the Child's own fields and
// its programs' registers, which warden does not touch while init runs;
// its signal handlers are its own copy (no CLONE_SIGHAND), reset before any
// signal is unblocked; its fd table is its own (no CLONE_FILES). Sharing
// the memory also shares its "dumpable" flag: init's PR_SET_DUMPABLE 0
// makes warden non-dumpable too. Should the host's OOM killer ever pick
// init as its victim, it kills warden with it; the jail ends either way,
// without a report then.
//
//go:norace
//go:nocheckptr
func (c *Child) startShared() error {
	stack, err := unix.Mmap(-1, 0, initStackSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_STACK)
	if err != nil {
		return fmt.Errorf("init stack: %w", err)
	}
	args := c.initArgs
	args.flags |= unix.CLONE_VM
	args.stack, args.stackSize = uint64(uintptr(unsafe.Pointer(&stack[0]))), initStackSize
	beforeFork()
	r1, e := cloneVM(uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args), uintptr(unsafe.Pointer(c)))
	afterFork()
	c.InCgroup = c.spec.CgroupFD >= 0
	if e == uintptr(syscall.ENOSYS) {
		// clone3 refused by a seccomp filter around warden.
		unix.Munmap(stack)
		return c.startCopy()
	}
	if e != 0 {
		unix.Munmap(stack)
		if e == uintptr(syscall.EINVAL) {
			return syscall.EINVAL
		}
		return fmt.Errorf("clone3: %w", syscall.Errno(e))
	}
	c.stack = stack
	c.Pid, c.PidFD = int(r1), int(c.initPidfd)
	unix.CloseOnExec(c.PidFD)
	return nil
}

// Release frees what the child used once it has been reaped.
func (c *Child) Release() {
	if c.stack != nil {
		unix.Munmap(c.stack)
		c.stack = nil
	}
	runtime.KeepAlive(c)
}

// startCopy clones init as a copy of warden (fork-style), which returns
// into this function in the child.
//
//go:norace
//go:nocheckptr
func (c *Child) startCopy() error {
	beforeFork()
	r1, _, e := syscall.RawSyscall6(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&c.initArgs)), unsafe.Sizeof(c.initArgs), 0, 0, 0, 0)
	if e == 0 && r1 == 0 {
		c.main() // never returns
	}
	c.InCgroup = c.spec.CgroupFD >= 0
	if e == syscall.ENOSYS {
		// A seccomp filter around warden refuses clone3 (as warden's own
		// profiles do): clone(2), and the caller moves the child into its
		// cgroup before it lets it go.
		flags := uintptr(c.initArgs.flags&^unix.CLONE_INTO_CGROUP) | uintptr(c.initArgs.exitSignal)
		r1, _, e = syscall.RawSyscall6(unix.SYS_CLONE, flags, 0, uintptr(unsafe.Pointer(&c.initPidfd)), 0, 0, 0)
		if e == 0 && r1 == 0 {
			c.main()
		}
		c.InCgroup = false
	}
	afterFork()
	if e != 0 {
		return fmt.Errorf("clone3: %w", e)
	}
	c.Pid, c.PidFD = int(r1), int(c.initPidfd)
	unix.CloseOnExec(c.PidFD)
	return nil
}

// main is the child: the jail's init.
//
//go:nosplit
//go:norace
//go:nocheckptr
func (c *Child) main() {
	if i, e := c.init.run(); e != 0 {
		c.msg.Status = c.init.status
		c.send(MsgError, 0, int32(i), int32(e), -1)
		exit(1)
	}
	pid, e := c.forkPayload()
	if e != 0 {
		c.send(MsgError, 0, StepFork, int32(e), -1)
		exit(1)
	}
	if c.payload.reportFD != 0 {
		// The payload has its copy (and has exec'd or exited: vfork);
		// the reader sees EOF once the payload's goes too.
		syscall.RawSyscall6(unix.SYS_CLOSE, c.payload.reportFD, 0, 0, 0, 0, 0)
	}
	c.msg.Pid, c.msg.Marks = int32(pid), c.init.marks
	c.send(MsgStarted, 0, 0, 0, int(c.payPidfd))
	syscall.RawSyscall6(unix.SYS_CLOSE, uintptr(c.payPidfd), 0, 0, 0, 0, 0)
	if c.spec.Detach {
		exit(0)
	}
	if n := c.spec.PassFDs; n > 0 {
		// The payload has its own copies; init keeps none.
		syscall.RawSyscall6(unix.SYS_CLOSE_RANGE, 3, uintptr(3+n-1), 0, 0, 0, 0)
	}
	// Reap every process of the jail. Init has no signal handlers, so the
	// kernel discards every signal sent to it from inside its pid
	// namespace (pid_namespaces(7)): nothing in the jail can stop, crash
	// or confuse it.
	var status int32
	for {
		w, _, e := syscall.RawSyscall6(unix.SYS_WAIT4, ^uintptr(0), uintptr(unsafe.Pointer(&c.ws)), unix.WUNTRACED,
			uintptr(unsafe.Pointer(&c.ru)), 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			break // ECHILD: nothing left
		}
		if c.ws&0xff == 0x7f { // WIFSTOPPED
			if w == pid {
				c.msg.Status = (c.ws >> 8) & 0xff
				c.send(MsgStopped, 0, 0, 0, -1)
			}
			continue
		}
		if w == pid {
			status = c.ws
			c.msg.Rusage = c.ru
			if c.spec.Exec {
				break // the jail goes on; its init reaps the rest
			}
			// The payload is done: nothing else of the jail may outlive
			// it. kill(-1) from init reaches every process in its pid
			// namespace but itself (kill(2)).
			syscall.RawSyscall6(unix.SYS_KILL, ^uintptr(0), uintptr(unix.SIGKILL), 0, 0, 0, 0)
		}
	}
	c.msg.Status = status
	c.send(MsgExit, 0, 0, 0, -1)
	if c.spec.ExitStatus {
		if status&0x7f == 0 {
			exit(int(status>>8) & 0xff)
		}
		exit(128 + int(status&0x7f))
	}
	exit(0)
}

// forkPayload starts the payload: a vfork-style clone that shares init's
// memory, so no page table is copied, while init sleeps until the payload's
// execve (or exit). The payload runs its program on this stack; it never
// returns from here, and the parent returns at once with the pid: nothing
// of this frame the child may have changed is used after the call (the
// technique of package syscall's forkAndExecInChild1).
//
//go:noinline
//go:nosplit
//go:norace
//go:nocheckptr
func (c *Child) forkPayload() (uintptr, syscall.Errno) {
	c.payloadArgs.flags |= vforkFlags
	pid, e := vforkClone3(uintptr(unsafe.Pointer(&c.payloadArgs)), unsafe.Sizeof(c.payloadArgs))
	if e == uintptr(syscall.ENOSYS) {
		// clone3 refused by a filter around warden: clone(2), a copy.
		c.payloadArgs.flags &^= vforkFlags
		var e2 syscall.Errno
		pid, e2 = clone(&c.payloadArgs)
		e = uintptr(e2)
	}
	if e != 0 {
		return 0, syscall.Errno(e)
	}
	if pid == 0 {
		i, e := c.payload.run()
		c.msg.Status = c.payload.status
		c.payload.report(i, e)
		c.send(MsgError, 1, int32(i), int32(e), -1)
		exit(127)
	}
	return pid, 0
}

// send sends one message on the sync socket, with fd when fd >= 0.
//
//go:nosplit
//go:norace
//go:nocheckptr
func (c *Child) send(kind uint32, prog uint32, step, errno int32, fd int) syscall.Errno {
	c.msg.Kind, c.msg.Prog, c.msg.Step, c.msg.Errno = kind, prog, step, errno
	if fd >= 0 {
		*c.fdSlot = int32(fd)
		c.hdr.Controllen = uint64(len(c.cmsg))
	} else {
		c.hdr.Controllen = 0
	}
	for {
		_, _, e := syscall.RawSyscall6(unix.SYS_SENDMSG, uintptr(c.spec.SyncFD), uintptr(unsafe.Pointer(&c.hdr)), unix.MSG_NOSIGNAL, 0, 0, 0)
		if e != syscall.EINTR {
			return e
		}
	}
}

// Error turns an error message into what failed, from the programs.
func (c *Child) Error(m Message) (stage, path, detail string, errno syscall.Errno) {
	errno = syscall.Errno(m.Errno)
	if m.Step == StepFork {
		return "exec", "", "fork the payload (clone3)", errno
	}
	p := c.spec.Init
	if m.Prog == 1 {
		p = c.spec.Payload
	}
	stage, path, detail = p.Describe(int(m.Step))
	if i := int(m.Step); i >= 0 && i < len(p.Steps) && p.Steps[i].Nr == OpWait {
		// A hook's wait: how it ended, which is no errno of a call.
		detail, errno = HookEnding(errno, m.Status, p.Steps[i].Args[1].Show), 0
	}
	return stage, path, detail, errno
}

// HookEnding says how a hook ended, from its OpWait's errno, wait status
// and timeout (as the listing shows it: "{5s}").
func HookEnding(errno syscall.Errno, status int32, timeout string) string {
	switch {
	case errno == syscall.ETIMEDOUT:
		return "timed out after " + strings.Trim(timeout, "{}") + " (killed)"
	case errno != ErrStatus:
		return "waitid: " + errno.Error()
	case status&0x7f == 0:
		return fmt.Sprintf("exit status %d", status>>8&0xff)
	default:
		return "killed by " + unix.SignalName(syscall.Signal(status&0x7f))
	}
}

// Marks names the marks init's program set, from a "started" message.
func (c *Child) Marks(m Message) []string {
	var names []string
	for i, n := range c.spec.Init.Marks {
		if m.Marks&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return names
}
