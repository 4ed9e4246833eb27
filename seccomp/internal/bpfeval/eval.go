package bpfeval

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// Data is struct seccomp_data.
type Data struct {
	Nr                 int32
	Arch               uint32
	InstructionPointer uint64
	Args               [6]uint64
}

// Bytes lays d out as the kernel does, in native byte order.
func (d Data) Bytes() [64]byte {
	var b [64]byte
	binary.NativeEndian.PutUint32(b[0:], uint32(d.Nr))
	binary.NativeEndian.PutUint32(b[4:], d.Arch)
	binary.NativeEndian.PutUint64(b[8:], d.InstructionPointer)
	for i, a := range d.Args {
		binary.NativeEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

// Run executes prog on d and returns the filter's return value.
func Run(prog []unix.SockFilter, d Data) (uint32, error) {
	in := d.Bytes()
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(prog); pc++ {
		f := prog[pc]
		jump := func(cond bool) error {
			off := int(f.Jf)
			if cond {
				off = int(f.Jt)
			}
			pc += off
			if pc+1 >= len(prog) {
				return fmt.Errorf("pc %d: jump past the end", pc)
			}
			return nil
		}
		src := f.K
		if f.Code&0x08 == unix.BPF_X {
			src = x
		}
		switch f.Code & 0x07 {
		case unix.BPF_LD:
			switch f.Code {
			case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
				if f.K%4 != 0 || f.K+4 > 64 {
					return 0, fmt.Errorf("pc %d: load at offset %d outside seccomp_data or unaligned", pc, f.K)
				}
				a = binary.NativeEndian.Uint32(in[f.K:])
			case unix.BPF_LD | unix.BPF_W | unix.BPF_LEN:
				a = 64
			case unix.BPF_LD | unix.BPF_IMM:
				a = f.K
			case unix.BPF_LD | unix.BPF_MEM:
				if f.K >= 16 {
					return 0, fmt.Errorf("pc %d: scratch slot %d", pc, f.K)
				}
				a = mem[f.K]
			default:
				return 0, fmt.Errorf("pc %d: unsupported load %#x", pc, f.Code)
			}
		case unix.BPF_LDX:
			switch f.Code {
			case unix.BPF_LDX | unix.BPF_W | unix.BPF_LEN:
				x = 64
			case unix.BPF_LDX | unix.BPF_IMM:
				x = f.K
			case unix.BPF_LDX | unix.BPF_MEM:
				if f.K >= 16 {
					return 0, fmt.Errorf("pc %d: scratch slot %d", pc, f.K)
				}
				x = mem[f.K]
			default:
				return 0, fmt.Errorf("pc %d: unsupported ldx %#x", pc, f.Code)
			}
		case unix.BPF_ST, unix.BPF_STX:
			if f.K >= 16 {
				return 0, fmt.Errorf("pc %d: scratch slot %d", pc, f.K)
			}
			if f.Code&0x07 == unix.BPF_ST {
				mem[f.K] = a
			} else {
				mem[f.K] = x
			}
		case unix.BPF_ALU:
			switch f.Code & 0xf0 {
			case unix.BPF_ADD:
				a += src
			case unix.BPF_SUB:
				a -= src
			case unix.BPF_MUL:
				a *= src
			case unix.BPF_DIV:
				if src == 0 {
					return 0, nil // the kernel returns 0 (kill) on division by zero
				}
				a /= src
			case unix.BPF_MOD:
				if src == 0 {
					return 0, nil
				}
				a %= src
			case unix.BPF_AND:
				a &= src
			case unix.BPF_OR:
				a |= src
			case unix.BPF_XOR:
				a ^= src
			case unix.BPF_LSH:
				a <<= src
			case unix.BPF_RSH:
				a >>= src
			case unix.BPF_NEG:
				a = -a
			default:
				return 0, fmt.Errorf("pc %d: unsupported alu %#x", pc, f.Code)
			}
		case unix.BPF_JMP:
			var err error
			switch f.Code & 0xf0 {
			case unix.BPF_JA:
				pc += int(f.K)
				if pc+1 >= len(prog) {
					err = fmt.Errorf("pc %d: ja past the end", pc)
				}
			case unix.BPF_JEQ:
				err = jump(a == src)
			case unix.BPF_JGT:
				err = jump(a > src)
			case unix.BPF_JGE:
				err = jump(a >= src)
			case unix.BPF_JSET:
				err = jump(a&src != 0)
			default:
				err = fmt.Errorf("pc %d: unsupported jump %#x", pc, f.Code)
			}
			if err != nil {
				return 0, err
			}
		case unix.BPF_RET:
			if f.Code&0x18 == unix.BPF_A {
				return a, nil
			}
			return f.K, nil
		case unix.BPF_MISC:
			if f.Code&0xf8 == unix.BPF_TAX {
				x = a
			} else {
				a = x
			}
		}
	}
	return 0, fmt.Errorf("program ends without a return")
}
