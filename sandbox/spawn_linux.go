package sandbox

import (
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// lastCap is the highest capability number this kernel knows.
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return unix.CAP_LAST_CAP
	}
	n := 0
	for _, c := range b {
		if c >= '0' && c <= '9' {
			n = n*10 + int(c-'0')
		}
	}
	return n
}

// newStage2Cmd builds the stage-2 command for plan. files are the plan
// pipe, the sync socket and the log pipe, in fd order 3, 4, 5.
func newStage2Cmd(p *Plan, files []*os.File) *exec.Cmd {
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{"warden", "stage2"},
		Env:        []string{},
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		ExtraFiles: files,
	}
	caps := make([]uintptr, 0, 64)
	last := lastCap()
	for c := 0; c <= last; c++ {
		caps = append(caps, uintptr(c))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// All namespaces at clone: Go cannot unshare a user namespace
		// later (the runtime is multi-threaded), and a pid namespace only
		// takes effect for children of the process that unshares it.
		Cloneflags: p.Cloneflags,
		// Pdeathsig fires when the creating *thread* exits, so Run starts
		// stage-2 from a locked goroutine that lives until stage-2 ends.
		// The kernel keeps it across stage-2's exec because the ambient
		// capabilities below do not change the credentials' cap sets.
		Pdeathsig: syscall.SIGKILL,
		// Its own process group, so that a Ctrl-C meant for warden is not
		// delivered to stage-2 twice (directly and forwarded).
		Setpgid: true,
		// Stage-2 keeps its capabilities in the new user namespace across
		// its exec as a non-root id (the caller's own uid inside):
		// capabilities(7), "ambient capabilities". They never reach the
		// payload: stage-2 clears them before it spawns it.
		AmbientCaps: caps,
	}
	if !p.Maps.Ranges {
		// One-id map: Go writes uid_map, "deny" to setgroups, then gid_map
		// between clone and exec; an unprivileged writer may map only its
		// own ids and must deny setgroups(2) (user_namespaces(7)).
		for _, m := range p.Maps.UID {
			cmd.SysProcAttr.UidMappings = append(cmd.SysProcAttr.UidMappings, syscall.SysProcIDMap{ContainerID: m.Inside, HostID: m.Host, Size: m.Count})
		}
		for _, m := range p.Maps.GID {
			cmd.SysProcAttr.GidMappings = append(cmd.SysProcAttr.GidMappings, syscall.SysProcIDMap{ContainerID: m.Inside, HostID: m.Host, Size: m.Count})
		}
		cmd.SysProcAttr.GidMappingsEnableSetgroups = false
	}
	return cmd
}
