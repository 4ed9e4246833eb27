package jailprog

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file is the code that runs in the jail's init and payload before the
// payload's execve: a child cloned raw from a Go process, which shares (or
// has a copy of) the runtime's memory but none of its threads. Nothing here may
// allocate, grow the stack, take a lock, start a goroutine, panic or write a
// pointer (a write barrier). So every function below is //go:nosplit (the
// linker rejects a nosplit chain that could overflow the stack), indexes only
// with values proven in range (registers are a [256] array indexed by a
// uint8), and calls nothing but other nosplit functions and
// syscall.RawSyscall6. The listing of what it runs is Program.String.

// xstep is a linked Step: arguments resolved to values or register numbers.
type xstep struct {
	nr      uintptr
	a       [6]uintptr
	reg     [6]bool // a[j] is a register number
	nonzero bool
	out     int16 // -1: none
	guard   int16 // -1: none
	okErrno syscall.Errno
	jump    int32
	// cands are the paths of OpExec; dst the destination of OpStore.
	cands []uintptr
	dst   unsafe.Pointer
}

// image is a linked program: what the child runs.
type image struct {
	steps []xstep
	regs  [MaxRegs]uintptr
	marks uint64
	// keep holds what the steps point to, so the collector keeps it.
	keep  [][]byte
	lists [][]uintptr
	// child sends OpNotify's message.
	child *Child
	dfl   [4]uint64 // struct sigaction of SIG_DFL (all zero)

	// What OpPipe, OpSpawn and OpWait use (a hook's run).
	pipe      [2]int32
	spawnArgs cloneArgs
	pidfd     int32
	execErr   int32 // the hook's failed execve, written by the vfork child
	pfd       unix.PollFd
	info      [16]uint64 // siginfo_t of waitid
	// status is the wait status of the last OpWait, which the error
	// message carries.
	status int32
	// reportFD and reports: Program.ReportFD and each step's report
	// record (nil for a step that is not Reported).
	reportFD uintptr
	reports  [][]byte
}

const noFD = ^uintptr(0)

// link resolves p's arguments to addresses and values.
func link(p *Program) *image {
	im := &image{keep: make([][]byte, len(p.Bufs))}
	for i := range im.regs {
		im.regs[i] = noFD
	}
	addr := make([]uintptr, len(p.Bufs))
	for i, b := range p.Bufs {
		if len(b) == 0 {
			b = make([]byte, 1)
		}
		im.keep[i] = b
		addr[i] = uintptr(unsafe.Pointer(&b[0]))
	}
	for _, r := range p.Relocs {
		*(*uintptr)(unsafe.Pointer(&im.keep[r.Buf][r.Off])) = addr[r.Target]
	}
	lists := make([]uintptr, len(p.Lists))
	for i, l := range p.Lists {
		arr := make([]uintptr, len(l)+1)
		for j, bi := range l {
			arr[j] = addr[bi]
		}
		im.lists = append(im.lists, arr)
		lists[i] = uintptr(unsafe.Pointer(&arr[0]))
	}
	if p.ReportFD > 0 {
		im.reportFD = uintptr(p.ReportFD)
		im.reports = make([][]byte, len(p.Steps))
		for i, s := range p.Steps {
			if s.Reported {
				im.reports[i] = reportRecord(s)
			}
		}
	}
	im.steps = make([]xstep, len(p.Steps))
	for i, s := range p.Steps {
		x := &im.steps[i]
		x.nr, x.nonzero, x.okErrno, x.jump = s.Nr, s.NonZero, s.OkErrno, int32(s.Jump)
		x.out, x.guard = int16(s.Out), int16(s.Guard)
		for j, a := range s.Args {
			switch a.Kind {
			case Imm:
				x.a[j] = a.V
			case Reg:
				x.a[j], x.reg[j] = a.V, true
			case Buf:
				x.a[j] = addr[a.V]
			case RegAddr:
				x.a[j] = uintptr(unsafe.Pointer(&im.regs[a.V]))
			case List:
				x.a[j] = lists[a.V]
			}
		}
		switch s.Nr {
		case OpExec:
			x.cands = im.lists[s.Args[0].V]
			x.cands = x.cands[:len(x.cands)-1]
		case OpStore:
			x.dst = unsafe.Pointer(&im.keep[s.Args[1].V][0])
		}
	}
	return im
}

// run executes the image's steps and returns the index of the failed step
// and its errno, or (-1, 0) at the end. OpExec does not return on success.
//
//go:nosplit
//go:norace
//go:nocheckptr
func (im *image) run() (int, syscall.Errno) {
	steps := im.steps
	i := 0
	for {
		if uint(i) >= uint(len(steps)) {
			return -1, 0
		}
		s := &steps[i]
		i++
		if s.guard >= 0 && int(im.regs[uint8(s.guard)]) < 0 {
			continue
		}
		switch s.nr {
		case OpGoto:
			i = int(s.jump)
			continue
		case OpClose:
			r := uint8(s.a[0])
			if int(im.regs[r]) >= 0 {
				syscall.RawSyscall6(unix.SYS_CLOSE, im.regs[r], 0, 0, 0, 0, 0)
				im.regs[r] = noFD
			}
			continue
		case OpMark:
			im.marks |= 1 << (s.a[0] & 63)
			continue
		case OpStore:
			*(*int32)(s.dst) = int32(im.regs[uint8(s.a[0])])
			continue
		case OpExec:
			return i - 1, execSearch(s.cands, s.a[1], s.a[2])
		case OpSigDefault:
			for sig := uintptr(1); sig <= 64; sig++ {
				syscall.RawSyscall6(unix.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&im.dfl)), 0, 8, 0, 0)
			}
			continue
		case OpCapDrop:
			for c := uintptr(0); c < 64; c++ {
				if s.a[0]&(1<<c) == 0 {
					syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, c, 0, 0, 0, 0)
				}
			}
			continue
		case OpPipe:
			_, _, e := syscall.RawSyscall6(unix.SYS_PIPE2, uintptr(unsafe.Pointer(&im.pipe)), s.a[2], 0, 0, 0, 0)
			if e != 0 {
				return i - 1, e
			}
			im.regs[uint8(s.a[0])], im.regs[uint8(s.a[1])] = uintptr(im.pipe[0]), uintptr(im.pipe[1])
			continue
		case OpSpawn:
			im.execErr = 0
			if e := im.spawn(s); e != 0 {
				return i - 1, e
			}
			if im.execErr != 0 {
				// The vfork child's execve failed; it has exited 127.
				syscall.RawSyscall6(unix.SYS_WAITID, unix.P_PIDFD, uintptr(im.pidfd), uintptr(unsafe.Pointer(&im.info)), unix.WEXITED, 0, 0)
				syscall.RawSyscall6(unix.SYS_CLOSE, uintptr(im.pidfd), 0, 0, 0, 0, 0)
				return i - 1, syscall.Errno(im.execErr)
			}
			im.regs[uint8(s.out)] = uintptr(im.pidfd)
			continue
		case OpWait:
			if e := im.wait(s); e != 0 {
				return i - 1, e
			}
			continue
		case OpNotify:
			if im.child != nil {
				fd := -1
				if s.reg[0] {
					fd = int(im.regs[uint8(s.a[0])])
				}
				e := im.child.send(MsgNotify, 1, int32(s.a[1]), 0, fd)
				if e != 0 && s.a[1] == NotifyReady {
					// Nobody heard "ready" (warden oci create died):
					// waiting at the start gate would wait forever.
					return i - 1, e
				}
			}
			continue
		}
		var a [6]uintptr
		for j := 0; j < 6; j++ {
			a[j] = s.a[j]
			if s.reg[j] {
				a[j] = im.regs[uint8(s.a[j])]
			}
		}
		r1, _, e := syscall.RawSyscall6(s.nr, a[0], a[1], a[2], a[3], a[4], a[5])
		if e == 0 && s.nonzero && r1 == 0 {
			e = syscall.EPIPE
		}
		if e != 0 {
			if e != s.okErrno {
				return i - 1, e
			}
			r1 = noFD
			if s.jump > 0 {
				i = int(s.jump)
			}
		}
		if s.out >= 0 {
			im.regs[uint8(s.out)] = r1
		}
	}
}

// report writes step i's report, with errno e and the last wait status,
// to the program's ReportFD, if the step is Reported.
//
//go:nosplit
//go:norace
//go:nocheckptr
func (im *image) report(i int, e syscall.Errno) {
	if im.reportFD == 0 || uint(i) >= uint(len(im.reports)) {
		return
	}
	r := im.reports[i]
	if len(r) < reportHeader {
		return
	}
	*(*int32)(unsafe.Pointer(&r[0])) = int32(e)
	*(*int32)(unsafe.Pointer(&r[4])) = im.status
	syscall.RawSyscall6(unix.SYS_WRITE, im.reportFD, uintptr(unsafe.Pointer(&r[0])), uintptr(len(r)), 0, 0, 0)
}

// spawn starts a hook's process (OpSpawn), its pidfd in im.pidfd. Like
// Child.forkPayload it clones vfork-style on this stack: the child never
// returns from here, and the parent uses nothing of this frame the child
// may have changed.
//
//go:noinline
//go:nosplit
//go:norace
//go:nocheckptr
func (im *image) spawn(s *xstep) syscall.Errno {
	im.pidfd = -1
	a := &im.spawnArgs
	a.flags = vforkFlags | unix.CLONE_PIDFD
	a.pidfd = uint64(uintptr(unsafe.Pointer(&im.pidfd)))
	a.exitSignal = uint64(unix.SIGCHLD)
	pid, e := vforkClone3(uintptr(unsafe.Pointer(a)), unsafe.Sizeof(*a))
	if e == uintptr(syscall.ENOSYS) {
		// clone3 refused by a seccomp filter (a startContainer hook runs
		// under the container's): clone(2), a copy.
		a.flags &^= vforkFlags
		var e2 syscall.Errno
		pid, e2 = clone(a)
		e = uintptr(e2)
	}
	if e != 0 {
		return syscall.Errno(e)
	}
	if pid == 0 {
		stdin := im.regs[uint8(s.a[0])]
		syscall.RawSyscall6(unix.SYS_DUP3, stdin, 0, 0, 0, 0, 0)
		// Nothing of init's or the payload's but stdio: not the sync
		// socket, not the gate, not the fds passed to the payload.
		syscall.RawSyscall6(unix.SYS_CLOSE_RANGE, 3, ^uintptr(0)>>32, 0, 0, 0, 0)
		_, _, e := syscall.RawSyscall6(unix.SYS_EXECVE, s.a[1], s.a[2], s.a[3], 0, 0, 0)
		im.execErr = int32(e)
		exit(127)
	}
	return 0
}

// wait waits for a hook's process (OpWait): see OpWait.
//
//go:nosplit
//go:norace
//go:nocheckptr
func (im *image) wait(s *xstep) syscall.Errno {
	fd := im.regs[uint8(s.a[0])]
	im.status = 0
	timedOut := false
	if s.a[1] != 0 {
		im.pfd.Fd, im.pfd.Events, im.pfd.Revents = int32(fd), unix.POLLIN, 0
		for {
			n, _, e := syscall.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&im.pfd)), 1, s.a[1], 0, 0, 0)
			if e == syscall.EINTR {
				continue
			}
			if e != 0 {
				return e
			}
			if n == 0 {
				syscall.RawSyscall6(unix.SYS_PIDFD_SEND_SIGNAL, fd, uintptr(unix.SIGKILL), 0, 0, 0, 0)
				timedOut = true
			}
			break
		}
	}
	for {
		_, _, e := syscall.RawSyscall6(unix.SYS_WAITID, unix.P_PIDFD, fd, uintptr(unsafe.Pointer(&im.info)), unix.WEXITED, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		break
	}
	// siginfo_t: si_code at 8; si_status at 24 (after si_pid, si_uid).
	code := *(*int32)(unsafe.Add(unsafe.Pointer(&im.info), 8))
	st := *(*int32)(unsafe.Add(unsafe.Pointer(&im.info), 24))
	if code == 1 { // CLD_EXITED
		im.status = (st & 0xff) << 8
	} else { // CLD_KILLED, CLD_DUMPED: the signal, as wait4 has it
		im.status = st & 0x7f
	}
	if timedOut {
		return syscall.ETIMEDOUT
	}
	if im.status != 0 {
		return ErrStatus
	}
	return 0
}

// execSearch is execvpe(3)'s search over the candidate paths.
//
//go:nosplit
//go:norace
//go:nocheckptr
func execSearch(cands []uintptr, argv, envp uintptr) syscall.Errno {
	denied := false
	for k := 0; k < len(cands); k++ {
		_, _, e := syscall.RawSyscall6(unix.SYS_EXECVE, cands[k], argv, envp, 0, 0, 0)
		switch e {
		case syscall.EACCES:
			denied = true
		case syscall.ENOENT, syscall.ENOTDIR, syscall.ESTALE, syscall.ENODEV, syscall.ETIMEDOUT:
		default:
			return e
		}
	}
	if denied {
		return syscall.EACCES
	}
	return syscall.ENOENT
}

// cloneArgs is struct clone_args (clone3(2)).
type cloneArgs struct {
	flags      uint64
	pidfd      uint64
	childTID   uint64
	parentTID  uint64
	exitSignal uint64
	stack      uint64
	stackSize  uint64
	tls        uint64
	setTID     uint64
	setTIDSize uint64
	cgroup     uint64
}

//go:nosplit
//go:norace
func exit(code int) {
	for {
		syscall.RawSyscall6(unix.SYS_EXIT_GROUP, uintptr(code), 0, 0, 0, 0, 0)
	}
}

// clone is clone3 with args, or clone(2) with the same flags (less
// CLONE_INTO_CGROUP) where clone3 is refused with ENOSYS, as a seccomp
// filter around warden may do. The pidfd goes where args.pidfd points.
//
//go:nosplit
//go:norace
//go:nocheckptr
func clone(args *cloneArgs) (uintptr, syscall.Errno) {
	r1, _, e := syscall.RawSyscall6(unix.SYS_CLONE3, uintptr(unsafe.Pointer(args)), unsafe.Sizeof(*args), 0, 0, 0, 0)
	if e != syscall.ENOSYS {
		return r1, e
	}
	// clone(2) takes parent_tid third on every architecture; with
	// CLONE_PIDFD the pidfd is written there.
	flags := uintptr(args.flags&^unix.CLONE_INTO_CGROUP) | uintptr(args.exitSignal)
	r1, _, e = syscall.RawSyscall6(unix.SYS_CLONE, flags, 0, uintptr(args.pidfd), 0, 0, 0)
	return r1, e
}
