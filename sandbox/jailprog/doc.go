// Package jailprog compiles what a jail's init and payload must do into a
// jail program, and runs it in a child that has no Go runtime.
//
// A Program is data: a flat list of system calls (and a few pseudo-ops)
// with fd registers, so that a step can use the fd an earlier one returned,
// and every string, struct and BPF buffer allocated before the child
// exists. Builder appends steps; Mounts compiles a mount plan; Program.String
// lists it one call a line (`warden policy explain NAME --program`).
//
// Child runs two programs. Start clones the jail's init raw, from a locked
// thread, between the runtime's fork hooks: the child inherits a copy of
// warden's memory but no runtime threads, and runs only //go:nosplit code and
// raw system calls (see exec_linux.go for the rules). Init runs its program
// (fds, "go", host name, loopback, mounts, an OCI container's
// createContainer hooks, pivot_root), forks the payload, which runs its own
// program (process group, terminal, rlimits, capabilities, no_new_privs,
// seccomp last of the restrictions, an OCI container's startContainer
// hooks, execve), and then reaps. A hook is a few steps too: a pipe with the
// container's state, a vfork-style child that execs the hook, the wait with
// its timeout. Failures travel to the parent as (program, step, errno) and
// become the StageError the user sees. The protocol is in wire.go.
//
// This package must never decide policy: what to mount, which capabilities
// to keep or which filter to load comes from its caller, package sandbox.
package jailprog
