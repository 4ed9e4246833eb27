package sandbox

import (
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// rlimitNames maps --rlimit names to resources (getrlimit(2)).
var rlimitNames = map[string]int{
	"as": unix.RLIMIT_AS, "core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA,
	"fsize": unix.RLIMIT_FSIZE, "locks": unix.RLIMIT_LOCKS, "memlock": unix.RLIMIT_MEMLOCK,
	"msgqueue": unix.RLIMIT_MSGQUEUE, "nice": unix.RLIMIT_NICE, "nofile": unix.RLIMIT_NOFILE,
	"nproc": unix.RLIMIT_NPROC, "rss": unix.RLIMIT_RSS, "rtprio": unix.RLIMIT_RTPRIO,
	"sigpending": unix.RLIMIT_SIGPENDING, "stack": unix.RLIMIT_STACK,
}

// Rlimit is one resource limit for the payload.
type Rlimit struct {
	Name     string `json:"name"`
	Resource int    `json:"resource"`
	Soft     uint64 `json:"soft"`
	Hard     uint64 `json:"hard"`
}

// RlimitNames lists the accepted names, sorted.
func RlimitNames() []string {
	var n []string
	for k := range rlimitNames {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// ParseRlimit parses NAME=SOFT[:HARD]; values are numbers or "unlimited".
// Without HARD, the hard limit equals the soft one.
func ParseRlimit(s string) (Rlimit, error) {
	name, val, ok := strings.Cut(s, "=")
	res, known := rlimitNames[strings.ToLower(name)]
	if !ok || !known {
		return Rlimit{}, Usagef("--rlimit %q: want NAME=SOFT[:HARD] with NAME one of %s", s, strings.Join(RlimitNames(), ", "))
	}
	softS, hardS, hasHard := strings.Cut(val, ":")
	soft, err := parseLimit(softS)
	if err != nil {
		return Rlimit{}, Usagef("--rlimit %q: soft limit %q: use a number or \"unlimited\"", s, softS)
	}
	hard := soft
	if hasHard {
		if hard, err = parseLimit(hardS); err != nil {
			return Rlimit{}, Usagef("--rlimit %q: hard limit %q: use a number or \"unlimited\"", s, hardS)
		}
	}
	if soft > hard {
		return Rlimit{}, Usagef("--rlimit %q: the soft limit is above the hard limit", s)
	}
	return Rlimit{Name: strings.ToLower(name), Resource: res, Soft: soft, Hard: hard}, nil
}

func parseLimit(s string) (uint64, error) {
	if s == "unlimited" || s == "infinity" {
		return unix.RLIM_INFINITY, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// resolveRlimits applies the defaults (core dumps off) under the user's
// limits; a later limit for the same name wins.
func resolveRlimits(in []Rlimit) []Rlimit {
	byName := map[string]Rlimit{"core": {Name: "core", Resource: unix.RLIMIT_CORE}}
	for _, r := range in {
		byName[r.Name] = r
	}
	var out []Rlimit
	for _, n := range RlimitNames() {
		if r, ok := byName[n]; ok {
			out = append(out, r)
		}
	}
	return out
}
