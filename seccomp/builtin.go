package seccomp

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Names of the built-in profiles.
const (
	ProfileDefault = "default"
	ProfileStrict  = "strict"
	ProfileNone    = "none"
)

// BuiltinNames lists the built-in profiles.
func BuiltinNames() []string { return []string{ProfileDefault, ProfileStrict, ProfileNone} }

// Builtin returns a fresh copy of a built-in profile. "none" means no filter
// at all: it returns (nil, nil).
func Builtin(name string) (*Profile, error) {
	switch name {
	case ProfileDefault:
		return defaultProfile(), nil
	case ProfileStrict:
		return strictProfile(), nil
	case ProfileNone:
		return nil, nil
	}
	return nil, fmt.Errorf("seccomp profile %q: no such built-in profile (have %s)", name, strings.Join(BuiltinNames(), ", "))
}

// builder collects groups and rules in order.
type builder struct{ p *Profile }

func (b *builder) group(name, reason string) {
	b.p.Groups = append(b.p.Groups, Group{Name: name, Reason: reason})
}

func (b *builder) rules(group string, a Action, names string) {
	for _, n := range strings.Fields(names) {
		b.p.Rules = append(b.p.Rules, Rule{Syscall: n, Action: a, Group: group})
	}
}

func (b *builder) cond(group string, name string, a Action, comment string, args ...Arg) {
	b.p.Rules = append(b.p.Rules, Rule{Syscall: name, Action: a, Args: args, Group: group, Comment: comment})
}

var eperm = Errno(unix.EPERM)

// lo32 masks an argument the kernel reads as a 32-bit int or unsigned int.
// The filter sees the full 64-bit register, so an exact comparison could be
// bypassed by setting the upper half (0x1_00005412 is still TIOCSTI to the
// kernel's unsigned int cmd): deny rules on such arguments mask it.
func lo32Eq(index uint8, v uint64) Arg {
	return Arg{Index: index, Op: OpMaskedEq, Value: 0xffffffff, ValueTwo: v}
}

// nsFlags are the clone flags that create namespaces (CLONE_NEWNS,
// CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID,
// CLONE_NEWNET, CLONE_NEWTIME).
const nsFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWTIME

// Syscalls every profile allows: what libc, the Go runtime, shells, compilers
// and interpreters need. Grouped for the reader; each group is one line in
// docs/seccomp.md.
const (
	sysProcess = `exit exit_group wait4 waitid fork vfork execve execveat kill tkill tgkill
		getpid getppid gettid getpgid getpgrp setpgid getsid setsid prctl arch_prctl
		set_tid_address set_robust_list get_robust_list rseq restart_syscall capget capset
		getpriority setpriority sched_yield sched_getaffinity sched_setaffinity sched_getparam
		sched_setparam sched_getscheduler sched_setscheduler sched_get_priority_max
		sched_get_priority_min sched_rr_get_interval sched_getattr sched_setattr
		getrlimit setrlimit prlimit64 getrusage times uname sysinfo umask getcpu
		ioprio_get ioprio_set membarrier seccomp landlock_create_ruleset landlock_add_rule
		landlock_restrict_self pidfd_open getrandom`
	sysIdentity = `getuid geteuid getgid getegid getresuid getresgid getgroups setuid setgid
		setreuid setregid setresuid setresgid setfsuid setfsgid setgroups`
	sysSignals = `rt_sigaction rt_sigprocmask rt_sigreturn rt_sigsuspend rt_sigpending
		rt_sigtimedwait sigaltstack signalfd signalfd4 pause alarm
		rt_sigqueueinfo rt_tgsigqueueinfo pidfd_send_signal`
	sysMemory = `brk mmap munmap mremap mprotect madvise mincore mlock mlock2 munlock mlockall
		munlockall msync memfd_create pkey_alloc pkey_free pkey_mprotect map_shadow_stack mseal`
	sysFiles = `read write readv writev pread64 pwrite64 preadv pwritev preadv2 pwritev2
		open openat openat2 creat close close_range dup dup2 dup3 lseek fcntl flock fsync
		fdatasync sync syncfs sync_file_range fadvise64 fallocate ftruncate truncate readahead
		sendfile splice tee vmsplice copy_file_range stat fstat lstat newfstatat statx statfs
		fstatfs access faccessat faccessat2 getcwd chdir fchdir mkdir mkdirat rmdir rename
		renameat renameat2 link linkat unlink unlinkat symlink symlinkat readlink readlinkat
		chmod fchmod fchmodat fchmodat2 chown fchown lchown fchownat utime utimes utimensat
		futimesat mknod mknodat getdents getdents64 getxattr lgetxattr fgetxattr setxattr
		lsetxattr fsetxattr listxattr llistxattr flistxattr removexattr lremovexattr
		fremovexattr getxattrat setxattrat listxattrat removexattrat inotify_init inotify_init1
		inotify_add_watch inotify_rm_watch fanotify_mark cachestat statmount listmount`
	sysEvents = `poll ppoll select pselect6 epoll_create epoll_create1 epoll_ctl epoll_wait
		epoll_pwait epoll_pwait2 eventfd eventfd2 timerfd_create timerfd_settime timerfd_gettime
		nanosleep clock_nanosleep clock_gettime clock_getres gettimeofday time getitimer
		setitimer timer_create timer_settime timer_gettime timer_getoverrun timer_delete
		futex futex_waitv futex_wake futex_wait futex_requeue io_setup io_destroy io_submit
		io_cancel io_getevents io_pgetevents`
	sysIPC = `pipe pipe2 msgget msgsnd msgrcv msgctl semget semop semtimedop semctl shmget
		shmat shmdt shmctl mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify mq_getsetattr`
	sysNet = `socketpair connect accept accept4 bind listen getsockname getpeername sendto
		recvfrom sendmsg recvmsg sendmmsg recvmmsg shutdown setsockopt getsockopt`
)

// Syscalls the default profile denies, each set with its reason (Groups).
const (
	denyKeyring   = `keyctl add_key request_key`
	denyKernelExt = `bpf perf_event_open userfaultfd init_module finit_module delete_module kexec_load kexec_file_load`
	denyHandles   = `open_by_handle_at name_to_handle_at`
	denyMount     = `mount umount2 pivot_root chroot fsopen fsconfig fsmount fspick move_mount open_tree open_tree_attr mount_setattr`
	denyPtrace    = `ptrace process_vm_readv process_vm_writev kcmp pidfd_getfd process_madvise`
	denyIOUring   = `io_uring_setup io_uring_enter io_uring_register`
	denySystem    = `acct swapon swapoff reboot syslog sethostname setdomainname vhangup quotactl quotactl_fd lookup_dcookie iopl ioperm fanotify_init lsm_set_self_attr lsm_get_self_attr lsm_list_modules`
	denyClock     = `settimeofday clock_settime clock_adjtime adjtimex`
	denyNUMA      = `mbind set_mempolicy get_mempolicy set_mempolicy_home_node migrate_pages move_pages`
)

// Group names that Options switch (see Resolve).
const (
	groupPtrace     = "ptrace"
	groupIOUring    = "io_uring"
	groupNamespaces = "namespaces"
	groupAllow      = "policy-allow"
	groupDeny       = "policy-deny"
)

// Terminal ioctls that inject input or drive the console: TIOCSTI pushes
// bytes into the terminal's input queue (a payload sharing the user's tty
// could type commands into the shell after warden exits), TIOCLINUX can do
// the same through the Linux console's selection paste.
const (
	tiocsti   = unix.TIOCSTI   // 0x5412
	tioclinux = unix.TIOCLINUX // 0x541c
)

// AF_VSOCK sockets are not network-namespaced: they reach the hypervisor and
// other VMs' services even under net = "none".
const afVsock = unix.AF_VSOCK

func addCommon(b *builder) {
	b.group("process", "process life cycle, scheduling, limits: every program needs these")
	b.rules("process", Allow, sysProcess)
	b.group("identity", "uid/gid queries and changes; they only act within the jail's ID map")
	b.rules("identity", Allow, sysIdentity)
	b.group("signals", "signal delivery and handling")
	b.rules("signals", Allow, sysSignals)
	b.group("memory", "memory management")
	b.rules("memory", Allow, sysMemory)
	b.group("files", "file I/O and metadata; paths are confined by the mount namespace, not here")
	b.rules("files", Allow, sysFiles)
	b.group("events", "polling, timers, clocks (reading only), futexes, POSIX AIO")
	b.rules("events", Allow, sysEvents)
	b.group("ipc", "pipes and System V/POSIX IPC; the jail has its own IPC namespace")
	b.rules("ipc", Allow, sysIPC)
	b.group("network", "sockets; reachability is decided by the network namespace")
	b.rules("network", Allow, sysNet)
	b.group("tty", "ioctl is allowed except the terminal-injection requests TIOCSTI and TIOCLINUX (masked to 32 bits: the kernel ignores the upper half)")
	b.cond("tty", "ioctl", eperm, "TIOCSTI", lo32Eq(1, tiocsti))
	b.cond("tty", "ioctl", eperm, "TIOCLINUX", lo32Eq(1, tioclinux))
	b.rules("tty", Allow, "ioctl")
}

func addDenials(b *builder) {
	b.group("keyring", "the kernel keyring is not namespaced: keys of the user's host session would be reachable")
	b.rules("keyring", eperm, denyKeyring)
	b.group("kernel-extension", "BPF programs, perf events, userfaultfd (a common exploit primitive), modules and kexec: kernel attack surface no payload needs")
	b.rules("kernel-extension", eperm, denyKernelExt)
	b.group("file-handles", "open_by_handle_at opens files by inode handle, bypassing the mount namespace (the 'shocker' escape)")
	b.rules("file-handles", eperm, denyHandles)
	b.group("mount", "the jail's mounts are warden's: the payload must not remount, pivot or chroot (old and new mount API)")
	b.rules("mount", eperm, denyMount)
	b.group(groupPtrace, "reading or writing other processes' memory (allowed with ptrace = true)")
	b.rules(groupPtrace, eperm, denyPtrace)
	b.group(groupIOUring, "io_uring bypasses seccomp for the operations it performs and has a long CVE history (allowed with io_uring = true)")
	b.rules(groupIOUring, eperm, denyIOUring)
	b.group("system", "host-wide settings: accounting, swap, reboot, kernel log, hostname, quotas, port I/O, fanotify, LSM attributes")
	b.rules("system", eperm, denySystem)
	b.group("clock", "setting the system clock")
	b.rules("clock", eperm, denyClock)
	b.group("numa", "NUMA memory policy (Docker requires CAP_SYS_NICE for these)")
	b.rules("numa", eperm, denyNUMA)
	b.group("vsock", "AF_VSOCK sockets are not network-namespaced and reach the hypervisor")
	b.cond("vsock", "socket", eperm, "AF_VSOCK", lo32Eq(0, afVsock))
}

// addNamespaces denies new namespaces: unshare and setns, clone with a
// CLONE_NEW* flag, and clone3, whose flags live in memory that a filter
// cannot read, returns ENOSYS so that libc falls back to clone.
func addNamespaces(b *builder) {
	b.group(groupNamespaces, "new namespaces (nested user namespaces are kernel attack surface); clone3 gets ENOSYS so libc falls back to clone, whose flags a filter can check (allowed with nested_userns = true)")
	b.cond(groupNamespaces, "clone", Allow, "no CLONE_NEW* flag", Arg{Index: 0, Op: OpMaskedEq, Value: nsFlags, ValueTwo: 0})
	b.rules(groupNamespaces, enosys, "clone3")
	b.rules(groupNamespaces, eperm, "unshare setns")
}

func defaultProfile() *Profile {
	b := &builder{p: &Profile{Name: ProfileDefault, DefaultAction: eperm}}
	addCommon(b)
	b.group("legacy", "socket (any family but AF_VSOCK), personality with the values libc and setarch use, x86 LDT, secret memory, process_mrelease, remap_file_pages")
	b.rules("legacy", Allow, "socket modify_ldt memfd_secret process_mrelease remap_file_pages set_thread_area get_thread_area")
	// personality(2): 0 (PER_LINUX), 8 (PER_LINUX32), 0x20000 (UNAME26),
	// 0x20008, and 0xffffffff (query). Other personas such as
	// READ_IMPLIES_EXEC or ADDR_NO_RANDOMIZE weaken exploit mitigations.
	for _, v := range []uint64{0, 8, 0x20000, 0x20008, 0xffffffff} {
		b.cond("legacy", "personality", Allow, "", Arg{Index: 0, Op: OpEq, Value: v})
	}
	addDenials(b)
	addNamespaces(b)
	return b.p
}

// strictProfile is default with sockets limited to AF_UNIX, AF_INET,
// AF_INET6 and AF_NETLINK, and without personality, the x86 LDT and TLS
// descriptors, memfd_secret, process_mrelease and remap_file_pages. ptrace,
// io_uring and namespaces are denied as in default (Options still apply).
func strictProfile() *Profile {
	b := &builder{p: &Profile{Name: ProfileStrict, DefaultAction: eperm}}
	addCommon(b)
	b.group("socket-families", "only AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK sockets")
	for _, fam := range []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK} {
		b.cond("socket-families", "socket", Allow, "", lo32Eq(0, fam))
	}
	addDenials(b)
	b.group("strict", "no personality changes, no x86 LDT or TLS descriptors, no secret memory, no process_mrelease or remap_file_pages")
	b.rules("strict", eperm, "personality modify_ldt set_thread_area get_thread_area memfd_secret process_mrelease remap_file_pages")
	addNamespaces(b)
	return b.p
}
