package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	rtcgroups "github.com/opencontainers/runtime-tools/cgroups"
)

// suiteCgroupDirs lists, in every mounted cgroup hierarchy, the directories
// that the cgroup tests make a runtime create: runtime-tools' AbsCgroupPath
// (from the hierarchy's root) and every level of RelCgroupPath (relative to
// this process's own cgroup, as runc resolves a relative cgroupsPath).
// runc removes only the leaf of a path when it deletes a container, so the
// relative tests leave "testdir" and "testdir/cgrouptest" behind.
func suiteCgroupDirs() []string {
	own := map[string]string{} // "cpu,cpuacct" / "name=systemd" / "" (v2) -> path
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.SplitN(l, ":", 3)
			if len(f) == 3 {
				own[f[1]] = f[2]
			}
		}
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var dirs []string
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		if !ok {
			continue
		}
		pf, sf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(sf) < 3 || (sf[0] != "cgroup" && sf[0] != "cgroup2") {
			continue
		}
		root, mp := unescapeMountinfo(pf[3]), unescapeMountinfo(pf[4])
		opts := map[string]bool{}
		for _, o := range strings.Split(sf[2], ",") {
			opts[o] = true
		}
		ownPath, found := "", false
		for ctrls, p := range own {
			if sf[0] == "cgroup2" {
				if ctrls == "" {
					ownPath, found = p, true
				}
				continue
			}
			if ctrls == "" {
				continue
			}
			all := true
			for _, c := range strings.Split(ctrls, ",") {
				all = all && opts[c]
			}
			if all {
				ownPath, found = p, true
			}
		}
		dirs = append(dirs, filepath.Join(mp, rtcgroups.AbsCgroupPath))
		if !found {
			continue
		}
		rel := strings.TrimPrefix(ownPath, root)
		p := filepath.Join(mp, rel)
		for _, part := range strings.Split(rtcgroups.RelCgroupPath, "/") {
			p = filepath.Join(p, part)
			dirs = append(dirs, p)
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	return dirs
}

func existing(dirs []string) map[string]bool {
	m := map[string]bool{}
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			m[d] = true
		}
	}
	return m
}

// removeNewCgroups rmdirs (deepest first) the suite's cgroup directories
// that did not exist before the test. rmdir only succeeds on a cgroup
// without processes or children, so nothing in use can go.
func removeNewCgroups(dirs []string, before map[string]bool) (removed int, failed []string) {
	for _, d := range dirs {
		if before[d] {
			continue
		}
		if _, err := os.Stat(d); err != nil {
			continue
		}
		if err := os.Remove(d); err != nil {
			failed = append(failed, err.Error())
			continue
		}
		removed++
	}
	return removed, failed
}
