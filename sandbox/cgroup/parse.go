package cgroup

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// parseProcCgroup returns the cgroup v2 path ("0::/path" line) of a
// /proc/PID/cgroup file. On a v1-only host there is no such line.
func parseProcCgroup(data []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			if !strings.HasPrefix(rest, "/") {
				return "", fmt.Errorf("parse /proc/self/cgroup line %q: path is not absolute", line)
			}
			// " (deleted)" follows the path of a removed cgroup.
			return strings.TrimSuffix(rest, " (deleted)"), nil
		}
	}
	return "", fmt.Errorf("parse /proc/self/cgroup: no cgroup v2 (\"0::\") line: %w", ErrNoCgroup2)
}

// parseKeyed parses a flat-keyed cgroup file ("key value" per line: cpu.stat,
// memory.events, pids.events, cgroup.events). Lines whose value is not an
// integer are skipped.
func parseKeyed(data []byte) map[string]int64 {
	out := map[string]int64{}
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

// parseInt parses a single-value cgroup file (memory.peak, pids.peak);
// "max" is -1.
func parseInt(data []byte) (int64, error) {
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %q: %w", s, err)
	}
	return n, nil
}

// parseList parses a space-separated list file (cgroup.controllers,
// cgroup.subtree_control).
func parseList(data []byte) []string {
	return strings.Fields(string(data))
}

// v1Hierarchies parses /proc/cgroups into controller -> (hierarchy id,
// enabled). A hierarchy id of 0 means the controller is on cgroup2 (or
// unused); non-zero means a cgroup v1 hierarchy holds it.
func v1Hierarchies(data []byte) map[string][2]int {
	out := map[string][2]int{}
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		h, err1 := strconv.Atoi(f[1])
		en, err2 := strconv.Atoi(f[3])
		if err1 == nil && err2 == nil {
			out[f[0]] = [2]int{h, en}
		}
	}
	return out
}

// v1Name is the name /proc/cgroups uses for a cgroup v2 controller.
func v1Name(controller string) string {
	if controller == "io" {
		return "blkio"
	}
	return controller
}

// swapTotal returns SwapTotal from /proc/meminfo in kB, or -1 if absent.
func swapTotal(meminfo []byte) int64 {
	for line := range strings.SplitSeq(string(meminfo), "\n") {
		if rest, ok := strings.CutPrefix(line, "SwapTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return n
				}
			}
		}
	}
	return -1
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
