package sandbox

import (
	"fmt"
	"os"
	"strings"

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

// checkKeepDirs refuses, before anything is created, an --overlay-keep
// directory that already holds files: the run's changes would be mixed
// with them.
func checkKeepDirs(p *Plan) error {
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
			if err := writeset.Keep(upper, ov.Keep); err != nil {
				r.Err = joinErr(r.Err, fmt.Errorf("--overlay-keep %s: %w", ov.Keep, err))
			} else {
				r.Kept = ov.Keep
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
