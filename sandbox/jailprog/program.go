package jailprog

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// ArgKind says how a step's argument is found when the step runs.
type ArgKind uint8

const (
	Imm     ArgKind = iota // the value itself
	Reg                    // the value in register V (an fd an earlier step returned)
	Buf                    // the address of buffer V (a string, a struct, a BPF program)
	RegAddr                // the address of register V (for calls that take a pointer to an int)
	List                   // the address of a NULL-terminated array of the strings in Lists[V]
)

// Arg is one argument of a step.
type Arg struct {
	Kind ArgKind
	V    uintptr
	// Show is how the listing prints the argument.
	Show string
}

// Pseudo-ops: steps the executor carries out itself, numbered above every
// system call.
const (
	pseudo = 1 << 20
	// OpGoto continues at Step.Jump.
	OpGoto = pseudo + iota
	// OpClose closes the fd in register Args[0] if it holds one, and marks
	// the register empty (-1). It never fails.
	OpClose
	// OpMark sets bit Args[0] of the marks the parent receives with
	// "started" (Program.Marks names them).
	OpMark
	// OpStore copies register Args[0] into the 4 bytes at buffer Args[1]
	// (an fd into an SCM_RIGHTS message).
	OpStore
	// OpExec is execve(2) over a list of candidate paths, as execvpe(3)
	// searches PATH: Args[0] is a NULL-terminated array of paths, Args[1]
	// argv, Args[2] envp. A missing candidate (ENOENT, ENOTDIR, ESTALE,
	// ENODEV, ETIMEDOUT) or an unexecutable one (EACCES) tries the next;
	// any other error stops the search. It fails with EACCES when some
	// candidate was not executable, else ENOENT.
	OpExec
	// OpSigDefault resets the disposition of every signal (1-64) to
	// SIG_DFL with rt_sigaction(2); SIGKILL and SIGSTOP refuse (EINVAL),
	// which is not a failure.
	OpSigDefault
	// OpNotify sends the fd in register Args[0] to the parent as a
	// "notify" message tagged Args[1] (NotifyListener: the seccomp listener
	// of --seccomp-audit; NotifyOverlay+i: the tmpfs holding the upper
	// layer of the plan's i-th overlay).
	OpNotify
	// OpCapDrop drops every capability 0-63 from the bounding set with
	// prctl(PR_CAPBSET_DROP) but those in the mask Args[0]; numbers the
	// kernel does not know (EINVAL) are not a failure.
	OpCapDrop
	// OpPipe is pipe2(2) with flags Args[2]: the read end goes to register
	// Args[0], the write end to register Args[1].
	OpPipe
	// OpSpawn starts a hook: a vfork-style clone3 (CLONE_VM|CLONE_VFORK,
	// as the payload's, or a plain clone(2) copy where clone3 is refused)
	// with CLONE_PIDFD, the pidfd in register Out. The child makes the fd
	// in register Args[0] its stdin (dup3), closes every fd above 2, and
	// execve(2)s the path in buffer Args[1] with the argv and envp of the
	// lists Args[2] and Args[3]; should that fail it exits 127. The step
	// fails with the clone's errno, or with the child's execve errno when
	// it shares its parent's memory (vfork: the child has exec'd or exited
	// when the clone returns); a copy's failed execve shows as status 127.
	OpSpawn
	// OpWait waits for the process of the pidfd in register Args[0]
	// (waitid P_PIDFD): with a timeout (Args[1] the address of a struct
	// timespec, not 0), it polls the pidfd that long and then kills the
	// process with pidfd_send_signal(SIGKILL). It fails with ETIMEDOUT when
	// the process was killed for the timeout, with ErrStatus when it ended
	// with another status than 0; the wait status goes to the parent in the
	// error message (Message.Status).
	OpWait
)

// ErrStatus is the errno of an OpWait step whose process did not exit 0;
// Child.Error turns it into the status itself.
const ErrStatus = syscall.ECANCELED

// Step is one system call (or pseudo-op) of a jail program.
type Step struct {
	Nr   uintptr // system call number, or an Op* pseudo-op
	Name string  // the call's name, for the listing
	Args []Arg   // at most six
	// Out is the register that receives the result, -1 for none.
	Out int
	// Guard skips the step when register Guard is empty (< 0); -1: never.
	Guard int
	// OkErrno is an errno that is not a failure: Out is set empty (-1) and
	// the run goes on at Jump (at the next step when Jump is 0).
	OkErrno syscall.Errno
	Jump    int
	// NonZero makes a result of 0 a failure (EPIPE): a read that must get
	// data (the parent's "go").
	NonZero bool
	// Reported: when the step fails, the program's ReportFD gets a
	// Report of it (a hook's steps).
	Reported bool

	// Stage, Path and Detail describe the step in errors the user sees:
	// Stage is the part of the setup ("mount", "hostname", "exec", ...),
	// Path the file it concerns, Detail what it was doing, for example the
	// mount op ("bind ro /usr -> /usr: open source").
	Stage, Path, Detail string
}

// Program is a flat list of steps with fd registers. Everything a step
// points to is in Bufs, allocated before the child exists: the child that
// runs the program never allocates.
type Program struct {
	Steps []Step
	Bufs  [][]byte
	// NRegs is the number of registers the steps use.
	NRegs int
	// Marks names the bits OpMark sets.
	Marks []string
	// Lists are arrays of strings (argv, envp), each a list of indices
	// into Bufs.
	Lists [][]int
	// Relocs are pointers inside buffers (a sock_fprog's filter), written
	// when the program is linked.
	Relocs []Reloc
	// ReportFD, when not 0, is an fd the payload inherits from init (the
	// start gate of an OCI container, whose `warden oci start` reads it):
	// a failed Reported step writes its Report there before the payload
	// exits. Init closes its own copy once the payload has exec'd.
	ReportFD int
}

// Reloc asks the linker to write the address of buffer Target at byte Off
// of buffer Buf.
type Reloc struct{ Buf, Off, Target int }

// MaxRegs is the number of registers a program may use.
const MaxRegs = 256

// String lists the program, one step a line:
//
//	7  r2 = open_tree(AT_FDCWD, "/usr", OPEN_TREE_CLONE|AT_RECURSIVE|OPEN_TREE_CLOEXEC)
//	8  if r2: mount_setattr(r2, "", AT_EMPTY_PATH|AT_RECURSIVE, {set: RDONLY|NOSUID}, 32)
func (p *Program) String() string {
	var b strings.Builder
	width := len(strconv.Itoa(len(p.Steps)))
	for i, s := range p.Steps {
		fmt.Fprintf(&b, "%*d  %s\n", width, i, s.String())
	}
	return b.String()
}

// String renders one step.
func (s Step) String() string {
	var b strings.Builder
	if s.Guard >= 0 {
		fmt.Fprintf(&b, "if r%d: ", s.Guard)
	}
	switch s.Nr {
	case OpGoto:
		fmt.Fprintf(&b, "goto %d", s.Jump)
		return b.String()
	case OpMark:
		fmt.Fprintf(&b, "mark %s", s.Args[0].Show)
		return b.String()
	case OpSigDefault:
		b.WriteString("rt_sigaction(1…64, {SIG_DFL}, NULL, 8)  [every signal; EINVAL ok]")
		return b.String()
	case OpNotify:
		if s.Args[0].Kind != Reg {
			fmt.Fprintf(&b, "sendmsg(sync, {notify %s})", s.Args[1].Show)
			return b.String()
		}
		fmt.Fprintf(&b, "sendmsg(sync, {notify %s}, SCM_RIGHTS %s)", s.Args[1].Show, s.Args[0].Show)
		return b.String()
	case OpCapDrop:
		fmt.Fprintf(&b, "prctl(PR_CAPBSET_DROP, 0…63 except %s)  [each capability; EINVAL ok]", s.Args[0].Show)
		return b.String()
	case OpPipe:
		fmt.Fprintf(&b, "%s, %s = pipe2(%s)", s.Args[0].Show, s.Args[1].Show, s.Args[2].Show)
		return b.String()
	case OpSpawn:
		fmt.Fprintf(&b, "r%d = clone3({CLONE_VM|CLONE_VFORK|CLONE_PIDFD})  [child: dup3(%s, 0, 0), close_range(3, ~0U, 0), execve(%s, %s, %s), else exit 127]",
			s.Out, s.Args[0].Show, s.Args[1].Show, s.Args[2].Show, s.Args[3].Show)
		return b.String()
	case OpWait:
		if s.Args[1].V != 0 {
			fmt.Fprintf(&b, "ppoll({%s, POLLIN}, 1, %s) → 0: pidfd_send_signal(%s, SIGKILL), fail ETIMEDOUT; ", s.Args[0].Show, s.Args[1].Show, s.Args[0].Show)
		}
		fmt.Fprintf(&b, "waitid(P_PIDFD, %s, WEXITED)  [status ≠ 0 fails]", s.Args[0].Show)
		return b.String()
	}
	if s.Out >= 0 {
		fmt.Fprintf(&b, "r%d = ", s.Out)
	}
	b.WriteString(s.Name)
	b.WriteByte('(')
	for i, a := range s.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.Show)
	}
	b.WriteByte(')')
	if s.NonZero {
		b.WriteString("  [0 fails]")
	}
	if s.OkErrno != 0 {
		name := errnoName(s.OkErrno)
		switch {
		case s.Jump > 0:
			fmt.Fprintf(&b, "  [%s: goto %d]", name, s.Jump)
		case s.Out >= 0:
			fmt.Fprintf(&b, "  [%s: r%d = none]", name, s.Out)
		default:
			fmt.Fprintf(&b, "  [%s ok]", name)
		}
	}
	return b.String()
}

func errnoName(e syscall.Errno) string {
	names := map[syscall.Errno]string{syscall.ENOENT: "ENOENT", syscall.EEXIST: "EEXIST", syscall.EINVAL: "EINVAL",
		syscall.EACCES: "EACCES", syscall.EROFS: "EROFS", syscall.EPERM: "EPERM"}
	if n, ok := names[e]; ok {
		return n
	}
	return "errno " + strconv.Itoa(int(e))
}

// Describe names step i of p for an error message: the stage, what the
// step did, and the call with its arguments.
func (p *Program) Describe(i int) (stage, path, detail string) {
	if i < 0 || i >= len(p.Steps) {
		return "setup", "", fmt.Sprintf("step %d of %d", i, len(p.Steps))
	}
	s := p.Steps[i]
	call := s.Name
	if s.Nr == OpExec || s.Nr == OpSpawn {
		call = "execve"
	}
	d := s.Detail
	if d == "" {
		d = call
	} else {
		d += " (" + call + ")"
	}
	return s.Stage, s.Path, d
}
