// Package sandbox creates, runs and tears down a warden jail.
//
// It owns the launch pipeline: Resolve turns options (from flags and a
// policy) and a description of the host into a Plan, a plain value that
// decides everything; Run executes a Plan from the host side (the parent);
// Stage2Main is the jail's init (PID 1 of its pid namespace), which applies
// the plan inside the new namespaces and supervises the payload.
//
//	warden (host, your uid)                          │ stage-2 = jail init, PID 1
//	1 Resolve → Plan (pure, testable)                │
//	2 re-exec /proc/self/exe stage2 with             │
//	  CLONE_NEWUSER|NEWNS|NEWPID|NEWNET|NEWIPC|      │
//	  NEWUTS|NEWCGROUP, plan on fd 3, from a locked  │
//	  thread (Pdeathsig = SIGKILL)                   │
//	3 ID maps: Go writes a one-id map itself;        │ waits for "go" on fd 4
//	  ranges go through newuidmap/newgidmap          │
//	4 send "go" ───────────────────────────────────► │ hostname, lo up, mounts, pivot_root,
//	                                                 │ PR_SET_DUMPABLE 0
//	5 forward signals, wait ◄────────────────────────│ "ready" or a StageError
//	                                                 │ spawn the payload from a locked thread
//	                                                 │ (caps dropped, no_new_privs), reap all
//	6 exit status ◄──────────────────────────────────│ payload exits → kill the rest → "exit"
//
// The wire messages are listed in protocol.go. Stage-2 never exits with an
// error that only went to a log: failures travel back as StageError values
// and become the last line the user sees.
//
// This package must never weaken a protection silently: a protection that
// cannot be applied fails the run, unless the caller asked for best-effort,
// in which case it is returned as a Warning.
package sandbox
