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
