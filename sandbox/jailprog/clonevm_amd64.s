#include "textflag.h"

// func cloneVM(args uintptr, size uintptr, c uintptr) (r1 uintptr, errno uintptr)
//
// clone3(2) with CLONE_VM and a stack of its own in args: the child shares
// warden's memory but none of its threads, and starts on that stack, where
// it calls initMain(c), which never returns. The parent returns the pid.
TEXT ·cloneVM(SB),NOSPLIT,$0-40
	MOVQ	args+0(FP), DI
	MOVQ	size+8(FP), SI
	MOVQ	c+16(FP), R13
	MOVQ	$435, AX	// SYS_clone3
	SYSCALL
	CMPQ	AX, $0
	JEQ	child
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	MOVQ	$-1, r1+24(FP)
	NEGQ	AX
	MOVQ	AX, errno+32(FP)
	RET
ok:
	MOVQ	AX, r1+24(FP)
	MOVQ	$0, errno+32(FP)
	RET
child:
	// SP is the top of the child's stack (clone_args.stack + stack_size).
	ANDQ	$~15, SP
	SUBQ	$16, SP
	MOVQ	R13, 0(SP)
	CALL	·initMain(SB)
	MOVQ	$1, DI
	MOVQ	$231, AX	// SYS_exit_group, should initMain return
	SYSCALL
	INT	$3
