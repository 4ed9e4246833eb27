package userns

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// IDMap is one line of /proc/PID/uid_map or gid_map: Count ids starting at
// Inside in the namespace are HostID.. outside it.
type IDMap struct {
	Inside int `json:"inside"`
	Host   int `json:"host"`
	Count  int `json:"count"`
}

func (m IDMap) String() string { return fmt.Sprintf("%d %d %d", m.Inside, m.Host, m.Count) }

// Mode says how ids are mapped.
type Mode string

const (
	ModeAuto   Mode = "auto"   // subuid ranges when usable, else a one-id map
	ModeSingle Mode = "single" // only the caller's own id
	ModeSubuid Mode = "subuid" // the caller plus its subordinate ranges; an error if unusable
)

// ParseMode validates a --map value.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeAuto, ModeSingle, ModeSubuid:
		return Mode(s), nil
	}
	return "", fmt.Errorf("map mode %q: must be auto, single or subuid", s)
}

// ErrNoSubIDs means the caller has no usable subordinate id range or the
// newuidmap/newgidmap helpers are missing.
var ErrNoSubIDs = errors.New("no subordinate id range")

// Maps is the resolved identity of a jail.
type Maps struct {
	UID, GID []IDMap
	// Ranges is true when the maps need newuidmap/newgidmap (more than one
	// id); false when the parent may write them itself (setgroups denied).
	Ranges bool
	// InsideUID and InsideGID are the payload's ids inside the jail.
	InsideUID, InsideGID int
}

// Compute returns the maps for a caller with host ids uid/gid. asRoot maps the
// caller to 0 inside; otherwise the caller keeps its own ids. subUID/subGID are
// the caller's subordinate ranges (Inside unused: Host is the start, Count the
// length); when both are non-empty the maps cover them too.
//
// With ranges, ids other than the caller's are filled from the subordinate
// ranges in order, skipping the inside id the caller occupies, so that
// chown(2) to any id below the total works inside.
func Compute(uid, gid int, asRoot bool, subUID, subGID []IDMap) Maps {
	m := Maps{InsideUID: uid, InsideGID: gid}
	if asRoot {
		m.InsideUID, m.InsideGID = 0, 0
	}
	if len(subUID) == 0 || len(subGID) == 0 {
		m.UID = []IDMap{{Inside: m.InsideUID, Host: uid, Count: 1}}
		m.GID = []IDMap{{Inside: m.InsideGID, Host: gid, Count: 1}}
		return m
	}
	m.Ranges = true
	m.UID = fill(m.InsideUID, uid, subUID)
	m.GID = fill(m.InsideGID, gid, subGID)
	return m
}

// fill maps self (inside) to host, then lays the subordinate ranges over the
// inside ids 0, 1, 2, ... around self.
func fill(self, host int, subs []IDMap) []IDMap {
	out := []IDMap{{Inside: self, Host: host, Count: 1}}
	next := 0
	for _, r := range subs {
		start, left := r.Host, r.Count
		for left > 0 {
			if next == self {
				next++
				continue
			}
			n := left
			if next < self && next+n > self {
				n = self - next
			}
			out = append(out, IDMap{Inside: next, Host: start, Count: n})
			next += n
			start += n
			left -= n
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Inside < out[j].Inside })
	return out
}

// HelperArgs renders maps as the argument list of newuidmap/newgidmap after
// the pid: "inside host count" triples.
func HelperArgs(maps []IDMap) []string {
	var args []string
	for _, m := range maps {
		args = append(args, fmt.Sprint(m.Inside), fmt.Sprint(m.Host), fmt.Sprint(m.Count))
	}
	return args
}

// Render prints maps as /proc/PID/uid_map does.
func Render(maps []IDMap) string {
	var b strings.Builder
	for _, m := range maps {
		fmt.Fprintf(&b, "%10d %10d %10d\n", m.Inside, m.Host, m.Count)
	}
	return b.String()
}
