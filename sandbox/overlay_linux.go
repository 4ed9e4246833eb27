package sandbox

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox/writeset"
)

// OverlayResult is what the command wrote in one overlay: its write-set,
// read from the upper layer after the jail is gone.
type OverlayResult struct {
	Target, Source string
	Set            writeset.Set
	// Kept is where the upper layer was saved (--overlay-keep), "" if not.
	Kept string
	// Err is why the write-set or the copy is missing or incomplete.
	Err error
}

// preflightLayers refuses, before anything is created, overlays the host
// cannot mount (checkOverlays) and an --overlay-keep directory that
// already holds files: the run's changes would be mixed with them.
func preflightLayers(p *Plan) error {
	if err := checkOverlays(p, kernelRelease(), mountsBelow); err != nil {
		return err
	}
	for _, ov := range p.Overlays {
		if ov.Keep == "" {
			continue
		}
		ents, err := os.ReadDir(ov.Keep)
		if err == nil && len(ents) > 0 {
			return Usagef("--overlay-keep %s: the directory is not empty; name a new or empty directory", ov.Keep)
		}
		if err != nil && !os.IsNotExist(err) {
			return Usagef("--overlay-keep %s: %v", ov.Keep, err)
		}
	}
	return nil
}

// overlayMinKernel is the first Linux that takes overlayfs layers by fd
// (FSCONFIG_SET_FD for lowerdir+, upperdir and workdir), which the jail
// program uses.
var overlayMinKernel = [2]int{6, 13}

// checkOverlays refuses, before anything is created, overlays this host
// cannot mount, naming the cause: a kernel too old, or a lower directory
// with mounts below it (a user namespace cannot clone those, "locked",
// into the overlay).
func checkOverlays(p *Plan, release string, mounts func(prefix string) ([]string, error)) error {
	if len(p.Overlays) == 0 {
		return nil
	}
	if !kernelAtLeast(release, overlayMinKernel) {
		return &HintError{Msg: fmt.Sprintf("%s: overlays need Linux %d.%d or later, and this is %s", p.Overlays[0].Source, overlayMinKernel[0], overlayMinKernel[1], release),
			Hint: []string{"warden passes overlayfs its layers by file descriptor; use --ro/--rw instead of --overlay on this kernel"}}
	}
	for _, ov := range p.Overlays {
		for _, l := range ov.Lowers {
			below, err := mounts(l)
			if err != nil || len(below) == 0 {
				continue // the mount itself fails with the kernel's reason then
			}
			more := ""
			if len(below) > 3 {
				more = fmt.Sprintf(" and %d more", len(below)-3)
				below = below[:3]
			}
			return &HintError{Msg: fmt.Sprintf("%s: %s has mounts below it (%s%s), which overlayfs in a user namespace cannot take", ov.Source, l, strings.Join(below, ", "), more),
				Hint: []string{"overlay a directory without mounts below it, or show this one with --ro or --rw"}}
		}
	}
	return nil
}

// mountsBelow lists the mount points strictly below dir.
func mountsBelow(dir string) ([]string, error) {
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	for _, m := range ms {
		if !seen[m.Mountpoint] && strings.HasPrefix(m.Mountpoint, strings.TrimSuffix(dir, "/")+"/") {
			seen[m.Mountpoint] = true
			out = append(out, m.Mountpoint)
		}
	}
	return out, nil
}

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// kernelAtLeast says whether a release ("6.18.44-amd64") is min or later;
// one it cannot read counts as new enough (the mount says the rest).
func kernelAtLeast(release string, min [2]int) bool {
	f := strings.FieldsFunc(release, func(r rune) bool { return r == '.' || r == '-' })
	if len(f) < 2 {
		return true
	}
	major, err1 := strconv.Atoi(f[0])
	minor, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return true
	}
	return major > min[0] || major == min[0] && minor >= min[1]
}

// keepUpper takes the fd of overlay i's upper-layer tmpfs from init's
// "notify".
func (l *launch) keepUpper(i, fd int) {
	if l.uppers == nil {
		l.uppers = map[int]int{}
	}
	if _, dup := l.uppers[i]; dup || i < 0 || i >= len(l.p.Overlays) {
		unix.Close(fd)
		return
	}
	l.uppers[i] = fd
}

// closeUppers lets the upper layers' tmpfs go.
func (l *launch) closeUppers() {
	for _, fd := range l.uppers {
		unix.Close(fd)
	}
	l.uppers = nil
}

// overlayResults reads each overlay's write-set, after the jail is gone
// (nothing writes the upper layer any more), and saves the layer where
// --overlay-keep says. The walk opens nothing through the layer's symlinks
// (writeset's rules): the payload wrote it and is not trusted.
func (l *launch) overlayResults(res *Result) {
	if res == nil || len(l.p.Overlays) == 0 {
		return
	}
	for i, ov := range l.p.Overlays {
		r := OverlayResult{Target: ov.Target, Source: ov.Source}
		fd, ok := l.uppers[i]
		if !ok {
			r.Err = fmt.Errorf("the jail's init did not hand over the upper layer")
			res.Overlays = append(res.Overlays, r)
			continue
		}
		upper, err := unix.Openat(fd, "upper", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			r.Err = fmt.Errorf("open the upper layer: %w", err)
			res.Overlays = append(res.Overlays, r)
			continue
		}
		r.Set, r.Err = writeset.Diff(upper, ov.Lowers)
		r.Set = withoutMade(r.Set, ov.Made)
		if ov.Keep != "" {
			err := writeset.Keep(upper, ov.Keep)
			var partial *writeset.IncompleteError
			if err == nil || errors.As(err, &partial) {
				// Incomplete: the copy is done but for what it names
				// (device nodes, xattrs that could not be set).
				r.Kept = ov.Keep
			}
			if err != nil {
				r.Err = joinErr(r.Err, fmt.Errorf("--overlay-keep %s: %w", ov.Keep, err))
			}
		}
		unix.Close(upper)
		res.Overlays = append(res.Overlays, r)
	}
}

// withoutMade drops the mount points warden made in an overlay from what
// the command created.
func withoutMade(s writeset.Set, made map[string]bool) writeset.Set {
	if len(made) == 0 {
		return s
	}
	out := s.Created[:0:0]
	for _, e := range s.Created {
		if !made[e.Path] {
			out = append(out, e)
		}
	}
	s.Created = out
	return s
}

func joinErr(a, b error) error {
	if a == nil {
		return b
	}
	return fmt.Errorf("%v; %v", a, strings.TrimSpace(b.Error()))
}
