package jailprog

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Builder appends steps to a program. Its methods never fail; a program
// that needs more than MaxRegs registers is reported by Program.
type Builder struct {
	steps  []*Step
	bufs   [][]byte
	lists  [][]int
	relocs []Reloc
	marks  []string
	nregs  int
	free   []int
	err    error

	stage, path, detail string
	guard               int
	// optional collects the steps of an optional group: ENOENT in any of
	// them skips to the group's end.
	optional []*Step
	inOpt    bool
	reportFD int
}

// NewBuilder starts an empty program.
func NewBuilder() *Builder {
	return &Builder{guard: -1, steps: make([]*Step, 0, 256), bufs: make([][]byte, 0, 256)}
}

// Context sets what the following steps are part of, for error messages.
func (b *Builder) Context(stage, path, detail string) {
	b.stage, b.path, b.detail = stage, path, detail
}

// Guarded makes the following steps run only while register r holds an fd
// (-1: always).
func (b *Builder) Guarded(r int) { b.guard = r }

// BeginOptional starts a group of steps that is skipped from the first
// step that fails with ENOENT (a path that does not exist on this host).
func (b *Builder) BeginOptional() { b.inOpt, b.optional = true, nil }

// EndOptional ends the group: a skip lands on the next step added.
func (b *Builder) EndOptional() {
	for _, s := range b.optional {
		// Steps that tolerate another errno (EEXIST of a mkdirat) keep
		// going on at the next step.
		if s.OkErrno == syscall.ENOENT {
			s.Jump = len(b.steps)
		}
	}
	b.inOpt, b.optional = false, nil
}

// Reg allocates a register.
func (b *Builder) Reg() int {
	if n := len(b.free); n > 0 {
		r := b.free[n-1]
		b.free = b.free[:n-1]
		return r
	}
	if b.nregs >= MaxRegs && b.err == nil {
		b.err = fmt.Errorf("jail program needs more than %d fd registers", MaxRegs)
	}
	b.nregs++
	return b.nregs - 1
}

// Close emits the close of register r and frees it.
func (b *Builder) Close(r int) {
	for _, f := range b.free {
		if f == r && b.err == nil {
			b.err = fmt.Errorf("BUG: register r%d closed twice", r)
		}
	}
	s := b.add(&Step{Nr: OpClose, Name: "close", Args: []Arg{R(r)}, Out: -1})
	s.Guard = -1 // a close always runs: it skips empty registers itself
	b.free = append(b.free, r)
}

// Here is the index the next step will have.
func (b *Builder) Here() int { return len(b.steps) }

// Call appends a system call. The returned step may be adjusted (Out,
// OkErrno, ...) before the next step is added.
func (b *Builder) Call(nr uintptr, name string, args ...Arg) *Step {
	if len(args) > 6 && b.err == nil {
		b.err = fmt.Errorf("%s: %d arguments", name, len(args))
	}
	s := b.add(&Step{Nr: nr, Name: name, Args: args, Out: -1})
	if b.inOpt {
		s.OkErrno = syscall.ENOENT
		b.optional = append(b.optional, s)
	}
	return s
}

// Goto appends a jump; its target is set on the returned step.
func (b *Builder) Goto() *Step {
	s := b.add(&Step{Nr: OpGoto, Name: "goto", Out: -1})
	s.Guard = -1
	return s
}

// Mark appends a step that sets a mark named name in the "started" message.
func (b *Builder) Mark(name string) {
	bit := len(b.marks)
	b.marks = append(b.marks, name)
	b.add(&Step{Nr: OpMark, Name: "mark", Args: []Arg{{Kind: Imm, V: uintptr(bit), Show: name}}, Out: -1})
}

func (b *Builder) add(s *Step) *Step {
	s.Guard = b.guard
	s.Stage, s.Path, s.Detail = b.stage, b.path, b.detail
	b.steps = append(b.steps, s)
	return s
}

// Str is a NUL-terminated string argument.
func (b *Builder) Str(s string) Arg {
	return Arg{Kind: Buf, V: b.buf(append([]byte(s), 0)), Show: strconv.Quote(s)}
}

// Bytes is a buffer argument (a struct, a BPF program), printed as show.
func (b *Builder) Bytes(data []byte, show string) Arg {
	return Arg{Kind: Buf, V: b.buf(data), Show: show}
}

// Strs is a NULL-terminated array of strings (argv, envp), printed as show.
func (b *Builder) Strs(list []string, show string) Arg {
	idx := make([]int, len(list))
	for i, s := range list {
		idx[i] = int(b.buf(append([]byte(s), 0)))
	}
	b.lists = append(b.lists, idx)
	return Arg{Kind: List, V: uintptr(len(b.lists) - 1), Show: show}
}

// Pointer makes the linker write the address of buffer target (an Arg made
// by Bytes or Str) at byte off of buffer in.
func (b *Builder) Pointer(in Arg, off int, target Arg) {
	b.relocs = append(b.relocs, Reloc{Buf: int(in.V), Off: off, Target: int(target.V)})
}

// Notify sends the fd in register r to the parent ("notify"), tagged tag
// (NotifyListener, NotifyOverlay+i), printed as show.
func (b *Builder) Notify(r int, tag int, show string) {
	b.add(&Step{Nr: OpNotify, Name: "sendmsg", Args: []Arg{R(r), I(uintptr(tag), show)}, Out: -1})
}

// Tell sends the parent a "notify" message tagged tag without an fd
// (NotifyReady), printed as show.
func (b *Builder) Tell(tag int, show string) {
	b.add(&Step{Nr: OpNotify, Name: "sendmsg", Args: []Arg{I(^uintptr(0), "-"), I(uintptr(tag), show)}, Out: -1})
}

// Exec appends the execve(2) search over cands (see OpExec).
func (b *Builder) Exec(cands, argv, env []string) {
	b.add(&Step{Nr: OpExec, Name: "execve", Out: -1, Args: []Arg{
		b.Strs(cands, fmt.Sprintf("%q", cands)),
		b.Strs(argv, fmt.Sprintf("%q", argv)),
		b.Strs(env, fmt.Sprintf("<%d variables>", len(env))),
	}})
}

// CapDrop drops every capability from the bounding set but those in keep
// (a bit mask), printed as show.
func (b *Builder) CapDrop(keep uint64, show string) {
	b.add(&Step{Nr: OpCapDrop, Name: "prctl", Args: []Arg{I(uintptr(keep), show)}, Out: -1})
}

// Hook appends the run of one hook (an OCI createContainer or
// startContainer hook), under stage (for errors: "createContainer hook 0
// (/usr/bin/x)"): a pipe that gets the container's state (buffer state,
// its length in register stateLen) and is closed for writing, so the hook
// reads the state and then EOF on its stdin; the hook started (OpSpawn)
// with the pipe as its stdin and argv and env as given; then the wait for
// it, killed after timeout (0: no limit). A hook that cannot be executed,
// ends with a status other than 0 or outlives its timeout fails the step.
//
// The state is written before the hook exists: a pipe holds 64 KiB, so
// the caller keeps the state below that, and the write never waits for a
// reader.
func (b *Builder) Hook(stage, path string, argv, env []string, timeout time.Duration, state Arg, stateLen int) {
	b.Context(stage, "", "pipe for the state")
	first := len(b.steps)
	rd, wr := b.Reg(), b.Reg()
	b.add(&Step{Nr: OpPipe, Name: "pipe2", Args: []Arg{R(rd), R(wr), I(unix.O_CLOEXEC, "O_CLOEXEC")}, Out: -1})
	b.Context(stage, "", "write the state")
	b.Call(unix.SYS_WRITE, "write", R(wr), state, R(stateLen))
	b.Close(wr)
	b.Context(stage, "", "")
	pid := b.Reg()
	b.add(&Step{Nr: OpSpawn, Name: "clone3", Out: pid, Args: []Arg{R(rd), b.Str(path),
		b.Strs(argv, fmt.Sprintf("%q", argv)), b.Strs(env, fmt.Sprintf("<%d variables>", len(env)))}})
	b.Close(rd)
	ts := Null
	if timeout > 0 {
		buf := make([]byte, 16) // struct timespec
		binary.NativeEndian.PutUint64(buf, uint64(timeout/time.Second))
		binary.NativeEndian.PutUint64(buf[8:], uint64(timeout%time.Second))
		ts = b.Bytes(buf, "{"+timeout.String()+"}")
	}
	b.add(&Step{Nr: OpWait, Name: "waitid", Args: []Arg{R(pid), ts}, Out: -1})
	b.Close(pid)
	for _, s := range b.steps[first:] {
		s.Reported = true
	}
}

// ReportTo makes fd the program's ReportFD.
func (b *Builder) ReportTo(fd int) { b.reportFD = fd }

// Store copies register r into the first 4 bytes of buffer into.
func (b *Builder) Store(r int, into Arg) {
	b.add(&Step{Nr: OpStore, Name: "store", Args: []Arg{R(r), into}, Out: -1})
}

// NewBuf reserves a buffer of n zero bytes and returns its index, for data
// that arrives while the program runs (the parent's "go" message).
func (b *Builder) NewBuf(n int) int { return int(b.buf(make([]byte, n))) }

func (b *Builder) buf(data []byte) uintptr {
	b.bufs = append(b.bufs, data)
	return uintptr(len(b.bufs) - 1)
}

// Program returns the finished program.
func (b *Builder) Program() (*Program, error) {
	if b.err != nil {
		return nil, b.err
	}
	p := &Program{Bufs: b.bufs, NRegs: b.nregs, Marks: b.marks, Lists: b.lists, Relocs: b.relocs, ReportFD: b.reportFD}
	p.Steps = make([]Step, len(b.steps))
	for i, s := range b.steps {
		p.Steps[i] = *s
	}
	return p, nil
}

// I is an immediate argument printed as show.
func I(v uintptr, show string) Arg { return Arg{Kind: Imm, V: v, Show: show} }

// Int is an immediate argument printed in decimal.
func Int(v int) Arg { return Arg{Kind: Imm, V: uintptr(v), Show: strconv.Itoa(v)} }

// Oct is an immediate argument printed in octal (a file mode).
func Oct(v uint32) Arg { return Arg{Kind: Imm, V: uintptr(v), Show: fmt.Sprintf("0%o", v)} }

// R is the fd in register r.
func R(r int) Arg { return Arg{Kind: Reg, V: uintptr(r), Show: "r" + strconv.Itoa(r)} }

// RAddr is the address of register r.
func RAddr(r int) Arg { return Arg{Kind: RegAddr, V: uintptr(r), Show: "&r" + strconv.Itoa(r)} }

// BufArg is the address of buffer i, printed as show.
func BufArg(i int, show string) Arg { return Arg{Kind: Buf, V: uintptr(i), Show: show} }

// Null is a NULL pointer.
var Null = Arg{Kind: Imm, V: 0, Show: "NULL"}

// Prologue appends what every init program starts with, before it touches
// anything: die with the parent's thread (unless dieWithParent is false: an
// OCI container outlives `warden oci create`); reset every signal disposition the
// Go runtime had installed and unblock all signals (init must catch
// nothing); keep only the fds the jail needs, the caller's --pass-fd fds at
// 3, 4, ... and the sync socket after them, closing every other fd of
// warden's; then wait for the parent's "go" (its bytes land in buffer
// goBuf). It returns the register with the length of "go".
func (b *Builder) Prologue(syncFD int, passFDs []int, goBuf int, dieWithParent bool) (goLen int) {
	if dieWithParent {
		b.Context("init", "", "die with warden")
		b.Call(unix.SYS_PRCTL, "prctl", I(unix.PR_SET_PDEATHSIG, "PR_SET_PDEATHSIG"), I(uintptr(unix.SIGKILL), "SIGKILL"))
	}
	b.Context("init", "", "reset signals")
	b.add(&Step{Nr: OpSigDefault, Name: "rt_sigaction", Out: -1})
	b.Call(unix.SYS_RT_SIGPROCMASK, "rt_sigprocmask", I(unix.SIG_SETMASK, "SIG_SETMASK"), b.Bytes(make([]byte, 8), "{}"), Null, Int(8))
	b.Context("init", "", "keep the jail's fds")
	keep := append(append([]int{}, passFDs...), syncFD)
	n := len(keep)
	regs := make([]int, n)
	for i, fd := range keep {
		// Above the target range first, so that no dup3 below can close
		// an fd still to be moved.
		regs[i] = b.Reg()
		show := strconv.Itoa(fd)
		if i == n-1 {
			show = "sync"
		}
		b.Call(unix.SYS_FCNTL, "fcntl", I(uintptr(fd), show), I(unix.F_DUPFD_CLOEXEC, "F_DUPFD_CLOEXEC"), Int(3+n)).Out = regs[i]
	}
	for i, r := range regs {
		// The passed fds stay open across the payload's execve; the sync
		// socket does not.
		flags, show := uintptr(0), "0"
		if i == n-1 {
			flags, show = unix.O_CLOEXEC, "O_CLOEXEC"
		}
		b.Call(unix.SYS_DUP3, "dup3", R(r), Int(3+i), I(flags, show))
		b.Close(r)
	}
	b.Call(unix.SYS_CLOSE_RANGE, "close_range", Int(3+n), I(^uintptr(0)>>32, "~0U"), Int(0))
	b.Context("init", "", "wait for go")
	goLen = b.Reg()
	s := b.Call(unix.SYS_READ, "read", I(uintptr(3+n-1), "sync"), BufArg(goBuf, "<go>"), Int(len(b.bufs[goBuf])))
	s.Out, s.NonZero = goLen, true
	return goLen
}
