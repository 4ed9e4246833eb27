package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoCgroup is returned by Pause when the jail has no cgroup of its own
// and the caller did not accept the SIGSTOP fallback.
var ErrNoCgroup = errors.New("the jail has no cgroup of its own to freeze")

// Pause freezes (or, with freeze false, thaws) a running jail: its cgroup's
// cgroup.freeze, where it has a cgroup of its own. Without one it fails with
// ErrNoCgroup, unless bestEffort: then every process of the jail but its
// init gets SIGSTOP (SIGCONT to thaw), found by the jail's pid namespace,
// which the supervisor at socket serves; degraded says so.
func Pause(info ExecInfo, socket string, freeze, bestEffort bool) (degraded bool, err error) {
	if info.Cgroup != "" {
		return false, freezeCgroup(info.Cgroup, freeze)
	}
	if !bestEffort {
		return false, ErrNoCgroup
	}
	fds, err := fetchNamespaces(socket)
	if err != nil {
		return true, err
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	var st unix.Stat_t
	if err := unix.Fstat(fds[2], &st); err != nil { // jailNamespaces[2] is pid
		return true, err
	}
	want := fmt.Sprintf("pid:[%d]", st.Ino)
	sig := unix.SIGSTOP
	if !freeze {
		sig = unix.SIGCONT
	}
	// Until a pass finds nothing new: a process may fork while the others
	// are being stopped.
	done := map[int]bool{}
	for pass := 0; pass < 10; pass++ {
		found := false
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || done[pid] {
				continue
			}
			if link, err := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "pid")); err != nil || link != want {
				continue // not the jail's, or its init (non-dumpable)
			}
			unix.Kill(pid, sig)
			done[pid], found = true, true
		}
		if !found {
			break
		}
	}
	return true, nil
}

// freezeCgroup writes cgroup.freeze and waits until cgroup.events says the
// cgroup is (un)frozen.
func freezeCgroup(dir string, freeze bool) error {
	v, want := "0", "frozen 0"
	if freeze {
		v, want = "1", "frozen 1"
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte(v), 0); err != nil {
		return fmt.Errorf("cgroup.freeze of %s: %w", dir, err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line == want {
				return nil
			}
		}
	}
	return fmt.Errorf("cgroup %s: not %s after 5 s", dir, strings.TrimPrefix(want, "frozen "))
}
