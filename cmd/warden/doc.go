//go:build linux

// Command warden runs a command in a rootless jail: a user namespace first,
// then mount, pid, network, IPC, UTS and cgroup namespaces, a seccomp
// filter and cgroup v2 limits, as a policy file and flags say.
//
// This package is thin on purpose: it parses flags, loads the policy and
// lays the flags over it, dispatches the subcommands (run, ls, exec, logs,
// stop, pause, resume, check, policy, seccomp, image, oci, version, help;
// called as warden-oci, the oci commands), prints errors and hints, and
// chooses the exit
// status. main is the only place that calls os.Exit. Everything that
// creates or supervises a jail lives in package sandbox; the jail's init is
// not a second warden process but a raw clone that runs a compiled program
// (package sandbox/jailprog).
package main
