// Package bpfeval interprets classic BPF seccomp programs over a
// seccomp_data in Go, with native-endian loads as the kernel does, so tests
// can check what a compiled filter returns without installing it. It checks
// what the kernel's verifier checks (aligned in-bounds loads, forward jumps
// in range, a return at the end) and never touches the system.
package bpfeval
