package userns

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Helpers names the setuid map writers.
type Helpers struct{ NewUIDMap, NewGIDMap string }

// FindHelpers looks up newuidmap and newgidmap in PATH and the usual places.
func FindHelpers() (Helpers, error) {
	var h Helpers
	for _, p := range []struct {
		name string
		dst  *string
	}{{"newuidmap", &h.NewUIDMap}, {"newgidmap", &h.NewGIDMap}} {
		path, err := exec.LookPath(p.name)
		if err != nil {
			for _, d := range []string{"/usr/bin/", "/bin/", "/usr/sbin/"} {
				if _, e := exec.LookPath(d + p.name); e == nil {
					path, err = d+p.name, nil
					break
				}
			}
		}
		if err != nil {
			return h, fmt.Errorf("%w: %s not found (install the uidmap package)", ErrNoSubIDs, p.name)
		}
		*p.dst = path
	}
	return h, nil
}

// Install writes m into the user namespace of pid with newuidmap and
// newgidmap. The process must be waiting (not yet using the ids).
//
// The two helpers run concurrently: each is a setuid exec, and they touch
// different files of the process.
func (h Helpers) Install(pid int, m Maps) error {
	gidErr := make(chan error, 1)
	go func() { gidErr <- run(h.NewGIDMap, pid, m.GID) }()
	uerr := run(h.NewUIDMap, pid, m.UID)
	gerr := <-gidErr
	if uerr != nil {
		return uerr
	}
	return gerr
}

func run(bin string, pid int, maps []IDMap) error {
	cmd := exec.Command(bin, append([]string{strconv.Itoa(pid)}, HelperArgs(maps)...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %d: %w: %s", bin, pid, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// WriteDirect writes m (a one-id map, Ranges false) into the user namespace
// of pid itself: uid_map, "deny" to setgroups, then gid_map. An unprivileged
// writer may map only its own ids and must deny setgroups(2) before it
// writes gid_map (user_namespaces(7)). The process must be waiting.
func WriteDirect(pid int, m Maps) error { return writeMaps(pid, m, true) }

// WritePrivileged writes maps of any shape, as only a caller with
// CAP_SETUID and CAP_SETGID over the namespace's parent may (root, or root
// of an engine's user namespace with ids mapped there), and leaves
// setgroups(2) allowed.
func WritePrivileged(pid int, m Maps) error { return writeMaps(pid, m, false) }

func writeMaps(pid int, m Maps, denySetgroups bool) error {
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	lines := func(maps []IDMap) string {
		var b strings.Builder
		for _, l := range maps {
			b.WriteString(l.String() + "\n")
		}
		return b.String()
	}
	files := []struct{ name, data string }{{"uid_map", lines(m.UID)}, {"setgroups", "deny"}, {"gid_map", lines(m.GID)}}
	if !denySetgroups {
		files = append(files[:1], files[2])
	}
	for _, f := range files {
		if err := os.WriteFile(dir+f.name, []byte(f.data), 0); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	return nil
}
