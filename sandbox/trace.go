package sandbox

import (
	"fmt"
	"path"
	"strings"

	"github.com/warden-sandbox/warden/sandbox/jailprog"
	"github.com/warden-sandbox/warden/sandbox/mount"
)

// TracePlan is one traced directory of a plan, in the order of the trace
// ops: the jail's init mounts it with FUSE and sends the device to warden,
// which serves Source there and reports what the command did in it.
type TracePlan struct {
	Target   string // where the jail sees it
	Source   string // the host directory
	ReadOnly bool
}

// applyTraces shows each of traces (directories of the jail's view) through
// the tracing file system: a bind of exactly that directory becomes a trace
// op with the bind's source and mode; a directory below a bind gets a trace
// op of its own, with the bind's mode, mounted after every op it lies in and
// before every op inside it. A directory the view does not show from the
// host (hidden, a tmpfs, an overlay, the jail's own /proc, /dev, /tmp) is
// refused: there is nothing of the host's there to trace.
func applyTraces(ops []mount.Op, traces []string, h *Host, uid, gid int) ([]mount.Op, []TracePlan, error) {
	if len(traces) == 0 {
		return ops, nil, nil
	}
	data := fmt.Sprintf("user_id=%d,group_id=%d", uid, gid)
	n := 0
	seen := map[string]bool{}
	for _, t := range traces {
		if !path.IsAbs(t) {
			return nil, nil, Usagef("--trace %s: must be an absolute path", t)
		}
		t = path.Clean(t)
		if seen[t] {
			continue
		}
		seen[t] = true
		if t == "/" {
			return nil, nil, Usagef("--trace /: the jail's root is warden's own; trace directories the view shows from the host (the project, /usr, ...)")
		}
		if n == jailprog.MaxTraces {
			return nil, nil, Usagef("--trace %s: at most %d traced directories", t, jailprog.MaxTraces)
		}
		// The op that shows t: the last one mounted at t or above it.
		cover := -1
		for i, o := range ops {
			if o.Kind != mount.Symlink && o.Kind != mount.Remount && (o.Target == t || strings.HasPrefix(t, strings.TrimSuffix(o.Target, "/")+"/")) {
				cover = i
			}
		}
		if cover < 0 || ops[cover].Kind != mount.Bind || ops[cover].File {
			what := "not shown from the host"
			if cover >= 0 {
				switch ops[cover].Kind {
				case mount.Hide:
					what = "hidden"
				case mount.Overlay:
					what = "copy-on-write (an overlay: --diff lists what was written there)"
				case mount.Trace:
					what = "traced already (" + ops[cover].Target + ")"
				case mount.Bind:
					what = "a file shown on its own (not a directory)"
				}
			}
			return nil, nil, Usagef("--trace %s: %s in this jail; trace a directory the jail shows from the host (see `warden policy explain`), or show it with --ro/--rw", t, what)
		}
		b := ops[cover]
		op := mount.Op{Kind: mount.Trace, Source: b.Source + strings.TrimPrefix(t, b.Target), Target: t, ReadOnly: b.ReadOnly, Data: data}
		if b.Target == t {
			ops[cover] = op
		} else {
			// Below the bind: the host directory must be the same path the
			// jail sees, with no symlink on the way that the jail would
			// resolve differently.
			real, err := h.EvalSymlinks(op.Source)
			if err != nil {
				return nil, nil, Usagef("--trace %s: no such directory on the host", t)
			}
			if real != op.Source {
				return nil, nil, Usagef("--trace %s: a symlink on the host leads to it (%s); trace the directory itself", t, real)
			}
			if fi, err := h.Stat(op.Source); err != nil || !fi.IsDir() {
				return nil, nil, Usagef("--trace %s: not a directory; trace the directory that holds it", t)
			}
			ops = insertTrace(ops, cover, op)
		}
		n++
	}
	// In the ops' order: init numbers the mounts (NotifyTrace+i) so.
	return ops, tracePlans(ops), nil
}

// insertTrace puts op (a trace below ops[cover]'s target) right after the
// last op that covers it, and moves the ops inside it that came earlier to
// after it, in their order: they are mounted on top of the traced view.
func insertTrace(ops []mount.Op, cover int, op mount.Op) []mount.Op {
	inside := func(o mount.Op) bool { return strings.HasPrefix(o.Target, op.Target+"/") || o.Target == op.Target }
	last := cover
	for i := cover + 1; i < len(ops); i++ {
		if o := ops[i]; o.Kind != mount.Symlink && strings.HasPrefix(op.Target, strings.TrimSuffix(o.Target, "/")+"/") {
			last = i
		}
	}
	var before, moved, after []mount.Op
	for i, o := range ops {
		switch {
		case i <= last && inside(o):
			moved = append(moved, o)
		case i <= last:
			before = append(before, o)
		default:
			after = append(after, o)
		}
	}
	out := append(before, op)
	out = append(out, moved...)
	return append(out, after...)
}

// tracePlans are the ops' traced directories, in order.
func tracePlans(ops []mount.Op) []TracePlan {
	var out []TracePlan
	for _, o := range ops {
		if o.Kind == mount.Trace {
			out = append(out, TracePlan{Target: o.Target, Source: o.Source, ReadOnly: o.ReadOnly})
		}
	}
	return out
}
