package jailprog

import "golang.org/x/sys/unix"

// vforkFlags are added to the payload's clone: it shares init's memory
// (no page-table copy) and init sleeps until the payload execs or exits.
const vforkFlags = unix.CLONE_VM | unix.CLONE_VFORK

//go:noescape
func vforkClone3(args uintptr, size uintptr) (r1 uintptr, errno uintptr)

// haveCloneVM says cloneVM exists: init shares warden's memory (no page
// table copied, no copy-on-write faults in warden afterwards).
const haveCloneVM = true

//go:noescape
func cloneVM(args uintptr, size uintptr, c uintptr) (r1 uintptr, errno uintptr)

// initMain is the entry of a child started by cloneVM, on its own stack.
//
//go:nosplit
//go:norace
//go:nocheckptr
func initMain(c *Child) {
	c.main()
}
