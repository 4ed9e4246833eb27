package jailprog

import "golang.org/x/sys/unix"

// vforkFlags are added to the payload's clone: it shares init's memory
// (no page-table copy) and init sleeps until the payload execs or exits.
const vforkFlags = unix.CLONE_VM | unix.CLONE_VFORK

//go:noescape
func vforkClone3(args uintptr, size uintptr) (r1 uintptr, errno uintptr)
