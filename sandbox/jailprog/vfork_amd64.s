#include "textflag.h"

// func vforkClone3(args uintptr, size uintptr) (r1 uintptr, errno uintptr)
//
// clone3(2) with CLONE_VM|CLONE_VFORK in args: the child runs on this very
// stack until it execs or exits, while the parent sleeps. The return
// address is kept in R12 across the call (the child's calls overwrite the
// stack below it), and each process writes its own result after the call,
// the parent last. Written after the same technique as the Go runtime's
// vfork path in package syscall.
TEXT ·vforkClone3(SB),NOSPLIT|NOFRAME,$0-32
	MOVQ	args+0(FP), DI
	MOVQ	size+8(FP), SI
	MOVQ	$0, DX
	MOVQ	$0, R10
	MOVQ	$0, R8
	MOVQ	$0, R9
	MOVQ	$435, AX	// SYS_clone3
	POPQ	R12
	SYSCALL
	PUSHQ	R12
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	MOVQ	$-1, r1+16(FP)
	NEGQ	AX
	MOVQ	AX, errno+24(FP)
	RET
ok:
	MOVQ	AX, r1+16(FP)
	MOVQ	$0, errno+24(FP)
	RET
