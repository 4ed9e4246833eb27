// Package sandbox creates, runs and tears down a warden jail.
//
// It owns the launch pipeline: Resolve turns options (from flags and a
// policy) and a description of the host into a Plan, a plain value that
// decides everything; Programs compiles the plan into the jail's two
// programs (package jailprog); Run executes them from the host side, the
// only Go runtime, and supervises the payload.
//
//	warden (host, your uid, the only Go runtime)   │ child = jail init, PID 1 (no runtime)
//	1 Resolve → Plan → Programs (pure)             │
//	2 cgroup leaf (if limits)                      │
//	3 clone3 NEWUSER|NEWNS|NEWPID|NEWNET|NEWIPC|   │ reset signals, keep its fds,
//	  NEWUTS|NEWCGROUP (+INTO_CGROUP, PIDFD) from  │ wait for "go"
//	  a locked thread; init shares warden's memory │
//	  (a copy of it when the jail has a cgroup:    │
//	  the OOM killer takes all who share memory)   │
//	4 ID maps (one id: written directly; ranges:   │
//	  newuidmap/newgidmap), network helper, "go" ─►│ host name, lo up, mounts,
//	                                               │ pivot_root, chdir, non-dumpable
//	5 supervise ◄──────────────────────────────────│ "started" + the payload's pidfd:
//	  signals by pidfd, job control, timeout,      │ vfork the payload: pgrp, tty,
//	  seccomp audit                                │ rlimits, caps, NNP, seccomp
//	                                               │ last, execve; init: wait4 loop,
//	                                               │ no signal handlers
//	6 report ◄─────────────────────────────────────│ "exit": status + rusage, after
//	                                               │ kill(-1, SIGKILL) and reaping
//
// The same pipeline serves three other front ends, each a room of its own:
//   - layers.go, overlay_linux.go: --overlay, --rootfs and --image become
//     overlay ops (the layers come from package image, resolved by the
//     caller); after the run, each overlay's upper layer, handed over by init,
//     is read into a write-set (package writeset) and saved (--overlay-keep);
//   - oci.go, oci_mounts.go, oci_resources.go, create_linux.go: an OCI
//     config.json becomes a Plan (PlanFromSpec; linux.resources through
//     LimitsFromResources), and Create builds the container, with its cgroup
//     leaf, and leaves init at its start gate, outliving warden (`warden oci`);
//   - exec_linux.go: a command joins a running jail (warden exec, oci exec).
//
// The wire messages are listed in jailprog/wire.go. The jail never fails
// with an error that only went to a log: a failed step travels back as
// (program, step, errno) and becomes a StageError, the last line the user
// sees.
//
// This package must never weaken a protection silently: a protection that
// cannot be applied fails the run, unless the caller asked for best-effort,
// in which case it is returned as a Warning.
package sandbox
