package seccomp

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// ActionKind is what the kernel does with a system call.
type ActionKind uint8

// The action kinds, in the kernel's terms (seccomp(2), "Filter return values").
const (
	ActAllow       ActionKind = iota // SECCOMP_RET_ALLOW
	ActErrno                         // SECCOMP_RET_ERRNO: fail with Action.Errno
	ActKillProcess                   // SECCOMP_RET_KILL_PROCESS
	ActKillThread                    // SECCOMP_RET_KILL_THREAD
	ActTrap                          // SECCOMP_RET_TRAP: SIGSYS
	ActLog                           // SECCOMP_RET_LOG: allow, and log to the audit log
	ActNotify                        // SECCOMP_RET_USER_NOTIF: ask the listener (the Auditor)
	ActTrace                         // SECCOMP_RET_TRACE: ask a ptrace tracer
)

// Action is a filter verdict. Errno is the error number for ActErrno (and the
// data word for ActTrace); it is zero otherwise.
type Action struct {
	Kind  ActionKind
	Errno uint16
}

// Allow, Errno, and friends build Actions.
var (
	Allow       = Action{Kind: ActAllow}
	KillProcess = Action{Kind: ActKillProcess}
)

// Errno returns the action that fails a syscall with e.
func Errno(e unix.Errno) Action { return Action{Kind: ActErrno, Errno: uint16(e)} }

// enosys is the verdict for syscalls the profile does not know and for clone3.
var enosys = Errno(unix.ENOSYS)

// IsDenial reports whether a is a refusal that audit mode reports: an errno
// other than ENOSYS. ENOSYS is how a profile says "not here, use a fallback"
// (clone3, newer syscalls); that is not a denial a user needs to read about.
func (a Action) IsDenial() bool {
	return a.Kind == ActErrno && a.Errno != uint16(unix.ENOSYS)
}

// String renders an action the way Render and errors show it: "allow",
// "errno(EPERM)", "kill-process", "notify".
func (a Action) String() string {
	switch a.Kind {
	case ActAllow:
		return "allow"
	case ActErrno:
		return "errno(" + errnoName(unix.Errno(a.Errno)) + ")"
	case ActKillProcess:
		return "kill-process"
	case ActKillThread:
		return "kill-thread"
	case ActTrap:
		return "trap"
	case ActLog:
		return "log"
	case ActNotify:
		return "notify"
	case ActTrace:
		return fmt.Sprintf("trace(%d)", a.Errno)
	}
	return fmt.Sprintf("action(%d)", a.Kind)
}

// ret is the SECCOMP_RET_* word a filter returns for a.
func (a Action) ret() uint32 {
	switch a.Kind {
	case ActAllow:
		return unix.SECCOMP_RET_ALLOW
	case ActErrno:
		return unix.SECCOMP_RET_ERRNO | uint32(a.Errno)
	case ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS
	case ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD
	case ActTrap:
		return unix.SECCOMP_RET_TRAP
	case ActLog:
		return unix.SECCOMP_RET_LOG
	case ActNotify:
		return unix.SECCOMP_RET_USER_NOTIF
	case ActTrace:
		return unix.SECCOMP_RET_TRACE | uint32(a.Errno)
	}
	panic(fmt.Sprintf("BUG(warden): seccomp action kind %d has no return value", a.Kind))
}

// ActionFromRet is the inverse of the SECCOMP_RET_* encoding, for tests and
// tools that interpret compiled programs.
func ActionFromRet(r uint32) Action {
	data := uint16(r & unix.SECCOMP_RET_DATA)
	switch r & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW:
		return Allow
	case unix.SECCOMP_RET_ERRNO:
		return Action{Kind: ActErrno, Errno: data}
	case unix.SECCOMP_RET_KILL_PROCESS:
		return KillProcess
	case unix.SECCOMP_RET_KILL_THREAD:
		return Action{Kind: ActKillThread}
	case unix.SECCOMP_RET_TRAP:
		return Action{Kind: ActTrap}
	case unix.SECCOMP_RET_LOG:
		return Action{Kind: ActLog}
	case unix.SECCOMP_RET_USER_NOTIF:
		return Action{Kind: ActNotify}
	case unix.SECCOMP_RET_TRACE:
		return Action{Kind: ActTrace, Errno: data}
	}
	// The kernel treats unknown actions as KILL_PROCESS (seccomp(2)).
	return KillProcess
}

// Op compares a syscall argument with a value.
type Op uint8

// The comparison operators, as in libseccomp and the OCI runtime spec.
const (
	OpEq       Op = iota + 1 // arg == Value
	OpNe                     // arg != Value
	OpLt                     // arg <  Value (unsigned 64-bit)
	OpLe                     // arg <= Value
	OpGt                     // arg >  Value
	OpGe                     // arg >= Value
	OpMaskedEq               // arg & Value == ValueTwo & Value
)

var opNames = map[Op]string{OpEq: "==", OpNe: "!=", OpLt: "<", OpLe: "<=", OpGt: ">", OpGe: ">=", OpMaskedEq: "&"}

// Arg is one condition on argument Index (0-5) of a syscall.
type Arg struct {
	Index    uint8
	Op       Op
	Value    uint64
	ValueTwo uint64 // only for OpMaskedEq
}

// Holds reports whether the condition is true for argument value v.
func (c Arg) Holds(v uint64) bool {
	switch c.Op {
	case OpEq:
		return v == c.Value
	case OpNe:
		return v != c.Value
	case OpLt:
		return v < c.Value
	case OpLe:
		return v <= c.Value
	case OpGt:
		return v > c.Value
	case OpGe:
		return v >= c.Value
	case OpMaskedEq:
		// Bits of ValueTwo outside the mask are ignored, as libseccomp
		// does (it masks the datum when it builds the filter).
		return v&c.Value == c.ValueTwo&c.Value
	}
	return false
}

func (c Arg) String() string {
	if c.Op == OpMaskedEq {
		return fmt.Sprintf("arg%d&%#x == %#x", c.Index, c.Value, c.ValueTwo)
	}
	return fmt.Sprintf("arg%d %s %#x", c.Index, opNames[c.Op], c.Value)
}

// Rule gives Action to Syscall when all Args hold (or always, when Args is
// empty). Group names the Group the rule belongs to, for Render and docs.
type Rule struct {
	Syscall string
	Action  Action
	Args    []Arg
	Group   string
	Comment string // e.g. "TIOCSTI": shown by Render after the conditions
}

// Group is a named set of rules with the reason they exist.
type Group struct {
	Name   string
	Reason string
}

// Warning is a degradation or a skipped input that the caller should show.
type Warning struct {
	Msg string
}

func (w Warning) String() string { return w.Msg }

// Profile is a resolved seccomp profile.
//
// Semantics, for a syscall (arch, nr, args), in this order (Decide implements
// them; Compile must produce a program that agrees):
//  1. arch is not the native one: kill the process;
//  2. x86_64 only: nr has the x32 bit (nr >= 0x40000000, except -1): kill the process;
//  3. nr is above the highest syscall number the profile names: ENOSYS;
//  4. the conditional rules for nr, in order: the first whose Args all hold decides;
//  5. the unconditional rule for nr, if any;
//  6. DefaultAction.
//
// With Audit, every denial (an errno other than ENOSYS, see Action.IsDenial)
// is turned into SECCOMP_RET_USER_NOTIF when compiled; the Auditor then
// answers with the errno that Decide gives, so the caller sees the same
// result.
type Profile struct {
	Name          string
	DefaultAction Action
	Rules         []Rule
	Groups        []Group
	// Audit compiles denials as USER_NOTIF (answered by an Auditor).
	Audit bool
	// LogDenials asks Install's caller to load the filter with
	// SECCOMP_FILTER_FLAG_LOG: the audit fallback where notify is unavailable.
	LogDenials bool
	Warnings   []Warning
}

// Data is the part of the kernel's struct seccomp_data a filter decides on.
type Data struct {
	Arch uint32
	Nr   int32
	Args [6]uint64
}

// x32Bit is __X32_SYSCALL_BIT: x32 syscalls share AUDIT_ARCH_X86_64 and are
// told apart by this bit in the syscall number.
const x32Bit = 0x40000000

// decide is the Go evaluation of p for d, given the native ABI and the
// profile's resolved table (see resolve). It returns the policy action,
// before the audit transformation (see Effective). Decide wraps it with the
// host's tables.
func (p *Profile) decide(d Data, t *table) Action {
	if d.Arch != t.arch.audit {
		return KillProcess
	}
	nr := uint32(d.Nr)
	if t.arch.x86_64 && nr >= x32Bit && nr != 0xffffffff {
		return KillProcess
	}
	if nr > uint32(t.knownMax) {
		return enosys
	}
	var uncond *Rule
	for _, i := range t.byNr[d.Nr] {
		r := &p.Rules[i]
		if len(r.Args) == 0 {
			if uncond == nil {
				uncond = r
			}
			continue
		}
		if argsHold(r.Args, d.Args) {
			return r.Action
		}
	}
	if uncond != nil {
		return uncond.Action
	}
	return p.DefaultAction
}

func argsHold(conds []Arg, args [6]uint64) bool {
	for _, c := range conds {
		if int(c.Index) >= len(args) || !c.Holds(args[c.Index]) {
			return false
		}
	}
	return true
}

// Effective is the action a compiled p returns when p's policy action is a:
// with Audit, denials become notifications.
func (p *Profile) Effective(a Action) Action {
	if p.Audit && a.IsDenial() {
		return Action{Kind: ActNotify}
	}
	return a
}

// errnoName is "EPERM" for unix.EPERM, or the number.
func errnoName(e unix.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return fmt.Sprintf("%d", uint16(e))
}

// ParseErrno accepts "EPERM", "eperm" or a decimal number from 1 to 4095.
func ParseErrno(s string) (unix.Errno, error) {
	if s == "" {
		return unix.EPERM, nil
	}
	var n uint
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s {
		if n == 0 || n > 4095 {
			return 0, fmt.Errorf("errno %q: out of range 1-4095", s)
		}
		return unix.Errno(n), nil
	}
	up := strings.ToUpper(s)
	for e := unix.Errno(1); e < 4096; e++ {
		if unix.ErrnoName(e) == up {
			return e, nil
		}
	}
	return 0, fmt.Errorf("errno %q: not an error name such as EPERM or EACCES", s)
}

// ParseAction accepts the names used by Options.Action: "errno" (with the
// given errno), "kill" and "log".
func ParseAction(s string, errno unix.Errno) (Action, error) {
	switch s {
	case "", "errno":
		return Errno(errno), nil
	case "kill", "kill-process":
		return KillProcess, nil
	case "log":
		return Action{Kind: ActLog}, nil
	}
	return Action{}, fmt.Errorf("action %q: want errno, kill or log", s)
}
