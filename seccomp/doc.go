// Package seccomp owns warden's system-call filters: the built-in profiles
// ("default", "strict", "none"), the import of Docker/OCI JSON profiles, the
// policy adjustments (allow, deny, errno, action, nested user namespaces,
// io_uring, ptrace, audit), compiling a profile to a classic BPF program with
// libseccomp, installing that program on the calling thread, and the audit
// supervisor that reports what a profile denied.
//
// A Profile is a plain value: a default action for the syscalls it knows but
// does not list, and an ordered list of per-syscall rules with optional
// argument conditions. Profile.Decide evaluates it in Go; Compile turns it into
// the raw struct sock_filter array that seccomp(2) loads. The two must agree,
// which the tests check by interpreting the compiled program
// (internal/bpfeval) and by fuzzing.
//
// The compiled program is libseccomp's program with a short prologue written
// by this package in front of it (see compile_linux.go):
//
//	arch != native            -> KILL_PROCESS   (i386 and other ABIs)
//	nr >= 0x40000000          -> KILL_PROCESS   (x32 ABI on x86_64; nr -1 excepted)
//	nr >  highest known nr    -> ERRNO(ENOSYS)  (syscalls newer than the profile)
//	argument overrides        -> their action   (e.g. ioctl TIOCSTI -> EPERM)
//	everything else           -> libseccomp's program
//
// This package never logs, never exits the process and never reads the policy
// file: it returns Warning values and errors, and takes its inputs as its own
// types (Options, Profile). It must never install a filter on any thread other
// than the calling one (no TSYNC): the loader keeps its other threads
// unfiltered and loads the payload's filter on the spawning thread only.
package seccomp
