// Package cgroup owns warden's use of cgroup v2: finding a subtree delegated to
// the calling user (its own cgroup, or a transient systemd user scope with
// Delegate=yes requested over the user D-Bus), moving warden out of the way
// (the kernel's "no internal processes" rule), creating one leaf per jail,
// writing the resource limits into it, reading its accounting back, and killing
// and removing it when the jail ends.
//
// The flow, as the core drives it (see docs/limits.md):
//
//	leaf, warns, err := cgroup.Setup(limits, cgroup.Required, "warden-"+id) // host side, before any namespace
//	fd, _ := leaf.FD()                                                  // jailprog.Spec{CgroupFD: fd}: clone3(CLONE_INTO_CGROUP)
//	... run the jail (or leaf.AddPID(pid) where clone3 is unavailable) ...
//	stats, _ := leaf.Stats(); ending := leaf.Ending()                    // "oom", "pids-limit" or ""
//	leaf.Remove()                                                       // cgroup.kill, wait for populated 0, rmdir
//
// Every limit ends up "enforced", "degraded: why" or "off" in Leaf.Applied.
// A limit is never dropped silently: in Required mode a limit that cannot be
// applied makes Setup fail with a *NotEnforcedError that names the controller,
// the file and the fix; in BestEffort mode Setup returns one Warning per such
// limit instead, and the caller must show them.
//
// What this package must never do: touch cgroup v1 hierarchies, remount
// anything, write outside the delegated subtree it found, log (it returns
// []Warning), exit the process, or leave a cgroup directory of its own behind
// on any error path. It imports only the standard library, x/sys,
// moby/sys/mountinfo and, for the one StartTransientUnit call, go-systemd/dbus
// with godbus.
package cgroup
