package seccomp

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// Offsets in struct seccomp_data (<linux/seccomp.h>).
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// asm is a tiny classic-BPF assembler with forward labels. Conditional jumps
// reach 255 instructions; "ja" reaches any distance.
type asm struct {
	ins    []insn
	labels []int // label -> instruction index, -1 while unplaced
}

type insn struct {
	f      unix.SockFilter
	jt, jf int // label ids, or -1 for the next instruction
	ja     int // label id for BPF_JA, or -1
}

const next = -1

func (a *asm) label() int { a.labels = append(a.labels, -1); return len(a.labels) - 1 }

func (a *asm) place(l int) { a.labels[l] = len(a.ins) }

func (a *asm) emit(code uint16, k uint32) {
	a.ins = append(a.ins, insn{f: unix.SockFilter{Code: code, K: k}, jt: next, jf: next, ja: next})
}

func (a *asm) jump(code uint16, k uint32, jt, jf int) {
	a.ins = append(a.ins, insn{f: unix.SockFilter{Code: code, K: k}, jt: jt, jf: jf, ja: next})
}

func (a *asm) ja(l int) {
	a.ins = append(a.ins, insn{f: unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA}, jt: next, jf: next, ja: l})
}

func (a *asm) ld(off uint32)   { a.emit(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }
func (a *asm) ret(r uint32)    { a.emit(unix.BPF_RET|unix.BPF_K, r) }
func (a *asm) and(mask uint32) { a.emit(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, mask) }

// link resolves labels; end is the label of the first instruction after the
// prologue (libseccomp's program).
func (a *asm) link() ([]unix.SockFilter, error) {
	out := make([]unix.SockFilter, len(a.ins))
	rel := func(i, l int) (int, error) {
		if l == next {
			return 0, nil
		}
		t := a.labels[l]
		if t < 0 {
			return 0, fmt.Errorf("BUG(warden): seccomp prologue label %d not placed", l)
		}
		d := t - i - 1
		if d < 0 {
			return 0, fmt.Errorf("BUG(warden): seccomp prologue jumps backwards")
		}
		return d, nil
	}
	for i, in := range a.ins {
		f := in.f
		if in.ja != next {
			d, err := rel(i, in.ja)
			if err != nil {
				return nil, err
			}
			f.K = uint32(d)
		} else if f.Code&0x07 == unix.BPF_JMP {
			t, err := rel(i, in.jt)
			if err != nil {
				return nil, err
			}
			e, err := rel(i, in.jf)
			if err != nil {
				return nil, err
			}
			if t > 255 || e > 255 {
				return nil, fmt.Errorf("seccomp prologue: a conditional jump spans %d instructions (limit 255): too many argument rules for one syscall", max(t, e))
			}
			f.Jt, f.Jf = uint8(t), uint8(e)
		}
		out[i] = f
	}
	return out, nil
}

// assemblePrologue writes the checks that run before libseccomp's program:
//
//	ld arch;  jne native -> kill
//	ld nr;    jge 0x40000000 -> (jeq -1 -> on) kill   [x86_64: the x32 ABI]
//	          jgt knownMax -> enosys
//	          ja rules
//	kill:     ret KILL_PROCESS
//	enosys:   ret ERRNO(ENOSYS)
//	rules:    per prologue syscall: jne nr -> next block; its rules in order,
//	          each "args hold -> ret action"; then ja end
//	end:      (libseccomp's program)
//
// Why ENOSYS here and not in libseccomp: its default action is one errno for
// every syscall it is not told about, so "newer than the profile" and "known
// but denied" could not differ. A syscall the profile has never heard of
// returns ENOSYS, which libc treats as "not implemented" and falls back
// (faccessat2 -> faccessat, clone3 -> clone); EPERM would make it fail.
func (pl *plan) assemblePrologue() ([]unix.SockFilter, error) {
	var a asm
	kill, enosysL, rules, end := a.label(), a.label(), a.label(), a.label()
	a.ld(offArch)
	a.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, pl.t.arch.audit, next, kill)
	a.ld(offNr)
	if pl.t.arch.x86_64 {
		// x32 syscalls run with AUDIT_ARCH_X86_64 and nr | 0x40000000; the
		// kernel here may not even build x32, but a filter must not depend on
		// that. nr == -1 (a tracer's "skip") falls through, as in libseccomp.
		x32 := a.label()
		a.jump(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, x32Bit, x32, next)
		a.jump(unix.BPF_JMP|unix.BPF_JGT|unix.BPF_K, uint32(pl.t.knownMax), enosysL, rules)
		a.place(x32)
		a.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, 0xffffffff, enosysL, kill)
	} else {
		a.jump(unix.BPF_JMP|unix.BPF_JGT|unix.BPF_K, uint32(pl.t.knownMax), enosysL, rules)
	}
	a.place(kill)
	a.ret(unix.SECCOMP_RET_KILL_PROCESS)
	a.place(enosysL)
	a.ret(enosys.ret())
	a.place(rules)
	for _, b := range pl.prologue {
		nextBlock := a.label()
		a.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, uint32(b.nr), next, nextBlock)
		for _, r := range b.rules {
			fail := a.label()
			for _, c := range r.Args {
				a.cond(c, fail)
			}
			a.ret(r.Action.ret())
			a.place(fail)
		}
		a.ja(end)
		a.place(nextBlock)
	}
	a.place(end)
	return a.link()
}

// words returns the offsets of the high and low 32-bit halves of argument i
// in seccomp_data, which stores each argument as a native-endian u64.
func words(i uint8) (hi, lo uint32) {
	off := uint32(offArgs + 8*int(i))
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 { // little endian
		return off + 4, off
	}
	return off, off + 4
}

// cond emits a 64-bit comparison of an argument that falls through when it
// holds and jumps to fail when it does not.
func (a *asm) cond(c Arg, fail int) {
	hi, lo := words(c.Index)
	vhi, vlo := uint32(c.Value>>32), uint32(c.Value)
	const (
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jgt = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
		jge = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	)
	done := a.label()
	switch c.Op {
	case OpEq:
		a.ld(hi)
		a.jump(jeq, vhi, next, fail)
		a.ld(lo)
		a.jump(jeq, vlo, next, fail)
	case OpNe:
		a.ld(hi)
		a.jump(jeq, vhi, next, done)
		a.ld(lo)
		a.jump(jeq, vlo, fail, next)
	case OpMaskedEq:
		mhi, mlo := uint32(c.Value>>32), uint32(c.Value)
		d := c.ValueTwo & c.Value // as libseccomp: datum bits outside the mask are ignored
		dhi, dlo := uint32(d>>32), uint32(d)
		a.ld(hi)
		a.and(mhi)
		a.jump(jeq, dhi, next, fail)
		a.ld(lo)
		a.and(mlo)
		a.jump(jeq, dlo, next, fail)
	case OpGt, OpGe:
		a.ld(hi)
		a.jump(jgt, vhi, done, next)
		a.jump(jeq, vhi, next, fail)
		a.ld(lo)
		if c.Op == OpGt {
			a.jump(jgt, vlo, next, fail)
		} else {
			a.jump(jge, vlo, next, fail)
		}
	case OpLt, OpLe:
		a.ld(hi)
		a.jump(jgt, vhi, fail, next)
		a.jump(jeq, vhi, next, done)
		a.ld(lo)
		if c.Op == OpLt {
			a.jump(jge, vlo, fail, next)
		} else {
			a.jump(jgt, vlo, fail, next)
		}
	}
	a.place(done)
}
