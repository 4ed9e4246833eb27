package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// maxInsns is BPF_MAXINSNS: the kernel refuses longer programs.
const maxInsns = 4096

// plan is how a profile is split between the prologue and libseccomp.
type plan struct {
	t        table
	def      Action           // effective default action
	uncond   map[int32]Action // effective unconditional actions (libseccomp)
	libCond  map[int32][]Rule // conditional rules for libseccomp (one action per syscall)
	prologue []prologueBlock  // conditional rules the prologue checks, first match wins
	order    []int32          // syscall numbers in first-seen order, for stable output
}

type prologueBlock struct {
	nr    int32
	rules []Rule // effective actions
}

// split decides which rules libseccomp compiles and which the prologue does.
//
// libseccomp cannot express "first match wins": an unconditional rule for a
// syscall silently replaces its conditional rules (whatever the order they
// were added in), two conditions on one argument in one rule are refused,
// and conditional rules with different actions have no defined precedence.
// So a syscall's conditional rules go to libseccomp only when they all share
// one action, compare with == or masked == only (see onlyEquality), have no
// repeated argument and the syscall has no unconditional rule; otherwise the
// prologue checks them in profile order and falls through to libseccomp for
// the rest.
func (p *Profile) split() (*plan, error) {
	t, err := p.resolve()
	if err != nil {
		return nil, err
	}
	pl := &plan{t: t, def: p.Effective(p.DefaultAction), uncond: map[int32]Action{}, libCond: map[int32][]Rule{}}
	conds := map[int32][]Rule{}
	for _, r := range p.Rules {
		nr, ok := t.nrs[r.Syscall]
		if !ok {
			continue // a syscall of another ABI
		}
		if !slices.Contains(pl.order, nr) {
			pl.order = append(pl.order, nr)
		}
		for _, c := range r.Args {
			if c.Index > 5 {
				return nil, fmt.Errorf("profile %s: %s: argument index %d out of range 0-5", p.Name, r.Syscall, c.Index)
			}
			if c.Op < OpEq || c.Op > OpMaskedEq {
				return nil, fmt.Errorf("profile %s: %s: unknown comparison %d", p.Name, r.Syscall, c.Op)
			}
		}
		eff := r
		eff.Action = p.Effective(r.Action)
		if len(r.Args) > 0 {
			conds[nr] = append(conds[nr], eff)
			continue
		}
		if prev, dup := pl.uncond[nr]; dup {
			if prev != eff.Action {
				return nil, fmt.Errorf("profile %s: %s has two unconditional rules (%s and %s)", p.Name, r.Syscall, prev, eff.Action)
			}
			continue
		}
		pl.uncond[nr] = eff.Action
	}
	for _, nr := range pl.order {
		rs := conds[nr]
		if len(rs) == 0 {
			continue
		}
		_, hasUncond := pl.uncond[nr]
		if !hasUncond && sameAction(rs) && !repeatsArg(rs) && onlyEquality(rs) {
			if rs[0].Action != pl.def {
				pl.libCond[nr] = rs
			}
			continue
		}
		pl.prologue = append(pl.prologue, prologueBlock{nr: nr, rules: rs})
	}
	return pl, nil
}

func sameAction(rs []Rule) bool {
	for _, r := range rs[1:] {
		if r.Action != rs[0].Action {
			return false
		}
	}
	return true
}

// onlyEquality reports whether rs compare with == and masked == only.
// libseccomp 2.5.4 merges several conditional rules that use <, <=, > or >=
// on 64-bit arguments into a wrong decision tree (FuzzCompile found a clone
// rule pair where the compiled filter returned the rule's errno for
// arguments that matched neither rule), so those go to the prologue.
func onlyEquality(rs []Rule) bool {
	for _, r := range rs {
		for _, c := range r.Args {
			if c.Op != OpEq && c.Op != OpMaskedEq {
				return false
			}
		}
	}
	return true
}

func repeatsArg(rs []Rule) bool {
	for _, r := range rs {
		var seen [6]bool
		for _, c := range r.Args {
			if seen[c.Index] {
				return true
			}
			seen[c.Index] = true
		}
	}
	return false
}

// Compile turns p into a raw struct sock_filter array (8 bytes per
// instruction, native endian) ready for seccomp(SECCOMP_SET_MODE_FILTER).
// A nil profile compiles to a nil program: no filter.
func Compile(p *Profile) ([]byte, error) {
	if p == nil {
		return nil, nil
	}
	pl, err := p.split()
	if err != nil {
		return nil, err
	}
	f, err := pl.filter()
	if err != nil {
		return nil, fmt.Errorf("compile profile %s: %w", p.Name, err)
	}
	defer f.Release()
	body, err := exportBPF(f)
	if err != nil {
		return nil, fmt.Errorf("compile profile %s: %w", p.Name, err)
	}
	pro, err := pl.assemblePrologue()
	if err != nil {
		return nil, fmt.Errorf("compile profile %s: %w", p.Name, err)
	}
	prog := append(encode(pro), body...)
	if n := len(prog) / 8; n > maxInsns {
		return nil, fmt.Errorf("compile profile %s: %d instructions, the kernel allows %d", p.Name, n, maxInsns)
	}
	return prog, nil
}

// filter builds the libseccomp filter for the native ABI only: other ABIs
// get the bad-arch action, KILL_PROCESS. Never KILL_THREAD: killing one
// thread of a multi-threaded process (the Go runtime) can leave the rest
// deadlocked.
func (pl *plan) filter() (*libseccomp.ScmpFilter, error) {
	f, err := libseccomp.NewFilter(toLib(pl.def))
	if err != nil {
		return nil, fmt.Errorf("libseccomp: new filter: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Release()
		}
	}()
	if err := f.SetBadArchAction(libseccomp.ActKillProcess); err != nil {
		return nil, fmt.Errorf("libseccomp: bad-arch action: %w", err)
	}
	// NNP is the loader's business (the payload's program sets it before seccomp(2));
	// ExportBPF ignores the bit anyway.
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return nil, fmt.Errorf("libseccomp: no-new-privs bit: %w", err)
	}
	// A binary tree of syscall numbers instead of a linear chain. libseccomp
	// <= 2.5.4 mishandles the tree for tiny filters (runc sets it only above
	// 32 syscalls), so do the same.
	if len(pl.uncond)+len(pl.libCond) > 32 {
		if err := f.SetOptimize(2); err != nil {
			return nil, fmt.Errorf("libseccomp: optimize: %w", err)
		}
	}
	for _, nr := range pl.order {
		sc := libseccomp.ScmpSyscall(nr)
		if a, has := pl.uncond[nr]; has && a != pl.def {
			if err := f.AddRuleExact(sc, toLib(a)); err != nil {
				return nil, fmt.Errorf("libseccomp: rule for %s: %w", SyscallName(nr), err)
			}
		}
		for _, r := range pl.libCond[nr] {
			conds := make([]libseccomp.ScmpCondition, 0, len(r.Args))
			for _, c := range r.Args {
				lc, err := toLibCond(c)
				if err != nil {
					return nil, fmt.Errorf("libseccomp: %s %s: %w", r.Syscall, c, err)
				}
				conds = append(conds, lc)
			}
			if err := f.AddRuleConditionalExact(sc, toLib(r.Action), conds); err != nil {
				return nil, fmt.Errorf("libseccomp: rule for %s: %w", r.Syscall, err)
			}
		}
	}
	ok = true
	return f, nil
}

func toLib(a Action) libseccomp.ScmpAction {
	switch a.Kind {
	case ActAllow:
		return libseccomp.ActAllow
	case ActErrno:
		return libseccomp.ActErrno.SetReturnCode(int16(a.Errno))
	case ActKillProcess:
		return libseccomp.ActKillProcess
	case ActKillThread:
		return libseccomp.ActKillThread
	case ActTrap:
		return libseccomp.ActTrap
	case ActLog:
		return libseccomp.ActLog
	case ActNotify:
		return libseccomp.ActNotify
	case ActTrace:
		return libseccomp.ActTrace.SetReturnCode(int16(a.Errno))
	}
	panic(fmt.Sprintf("BUG(warden): seccomp action kind %d has no libseccomp action", a.Kind))
}

func toLibCond(c Arg) (libseccomp.ScmpCondition, error) {
	ops := map[Op]libseccomp.ScmpCompareOp{
		OpEq: libseccomp.CompareEqual, OpNe: libseccomp.CompareNotEqual, OpLt: libseccomp.CompareLess,
		OpLe: libseccomp.CompareLessOrEqual, OpGt: libseccomp.CompareGreater, OpGe: libseccomp.CompareGreaterEqual,
		OpMaskedEq: libseccomp.CompareMaskedEqual,
	}
	if c.Op == OpMaskedEq {
		return libseccomp.MakeCondition(uint(c.Index), ops[c.Op], c.Value, c.ValueTwo)
	}
	return libseccomp.MakeCondition(uint(c.Index), ops[c.Op], c.Value)
}

// exportBPF writes f's program into a memfd and reads it back: libseccomp
// 2.5.4 has no ExportBPFMem, and a pipe would deadlock on programs larger
// than the pipe buffer.
func exportBPF(f *libseccomp.ScmpFilter) ([]byte, error) {
	file, err := memfd("warden-seccomp-bpf")
	if err != nil {
		return nil, err
	}
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, fmt.Errorf("libseccomp: export BPF: %w", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read BPF: %w", err)
	}
	b, err := io.ReadAll(file)
	if err != nil {
		return nil, fmt.Errorf("read BPF: %w", err)
	}
	if len(b) == 0 || len(b)%8 != 0 {
		return nil, fmt.Errorf("libseccomp exported %d bytes, not a whole number of instructions", len(b))
	}
	return b, nil
}

func memfd(name string) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// ExportPFC renders p as libseccomp's pseudo filter code, with the prologue
// described in comments first (libseccomp does not know about it).
func ExportPFC(p *Profile) (string, error) {
	if p == nil {
		return "# seccomp: off (profile none)\n", nil
	}
	pl, err := p.split()
	if err != nil {
		return "", err
	}
	f, err := pl.filter()
	if err != nil {
		return "", fmt.Errorf("export profile %s: %w", p.Name, err)
	}
	defer f.Release()
	file, err := memfd("warden-seccomp-pfc")
	if err != nil {
		return "", err
	}
	defer file.Close()
	if err := f.ExportPFC(file); err != nil {
		return "", fmt.Errorf("libseccomp: export PFC: %w", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("read PFC: %w", err)
	}
	b, err := io.ReadAll(file)
	if err != nil {
		return "", fmt.Errorf("read PFC: %w", err)
	}
	return pl.prologuePFC() + string(b), nil
}

func (pl *plan) prologuePFC() string {
	s := "#\n# warden prologue (runs before the libseccomp filter below)\n#\n"
	s += fmt.Sprintf("if ($arch != %d)\n  action KILL_PROCESS;\n", pl.t.arch.audit)
	if pl.t.arch.x86_64 {
		s += "if ($syscall >= 0x40000000 && $syscall != -1)  # x32 ABI\n  action KILL_PROCESS;\n"
	}
	s += fmt.Sprintf("if ($syscall > %d)  # newer than the profile\n  action ERRNO(%d);\n", pl.t.knownMax, unix.ENOSYS)
	for _, b := range pl.prologue {
		s += fmt.Sprintf("if ($syscall == %d)  # %s, first match wins\n", b.nr, SyscallName(b.nr))
		for _, r := range b.rules {
			cs := ""
			for i, c := range r.Args {
				if i > 0 {
					cs += " && "
				}
				cs += c.String()
			}
			s += fmt.Sprintf("  if (%s)\n    action %s;\n", cs, r.Action)
		}
	}
	return s
}

// encode lays out instructions as struct sock_filter in native byte order.
func encode(ins []unix.SockFilter) []byte {
	b := make([]byte, 0, 8*len(ins))
	for _, in := range ins {
		b = binary.NativeEndian.AppendUint16(b, in.Code)
		b = append(b, in.Jt, in.Jf)
		b = binary.NativeEndian.AppendUint32(b, in.K)
	}
	return b
}

// Decode is the inverse of the raw program layout: it splits prog into
// instructions.
func Decode(prog []byte) ([]unix.SockFilter, error) {
	if len(prog)%8 != 0 {
		return nil, errors.New("seccomp program: length is not a multiple of 8")
	}
	ins := make([]unix.SockFilter, len(prog)/8)
	for i := range ins {
		b := prog[8*i:]
		ins[i] = unix.SockFilter{Code: binary.NativeEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.NativeEndian.Uint32(b[4:])}
	}
	return ins, nil
}
