//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/policies"
	"github.com/warden-sandbox/warden/sandbox"
	"github.com/warden-sandbox/warden/sandbox/mount"
	"github.com/warden-sandbox/warden/seccomp"
)

// cmdPolicyLearn is `warden policy learn [--out FILE] [run flags] -- CMD`:
// it runs CMD as `warden run` would, with every directory the jail shows
// from the host traced (--trace) and the seccomp profile in audit mode
// (--seccomp-audit), then writes a policy that extends the one CMD ran
// under and shows only what CMD used. Its exit status is CMD's (the policy
// is written whatever it is), or 125 when warden itself failed.
func cmdPolicyLearn(args []string, stdout, stderr io.Writer) int {
	sandbox.PauseGC()
	sandbox.CatchSignals()
	fs, o := runFlags()
	var out string
	fs.StringVar(&out, "out", "", "write the learned policy to `FILE` (default: standard output)")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprint(stdout, learnUsage)
			return 0
		}
		return fail(stderr, sandbox.Usagef("policy learn: %v", err), "run `warden policy learn --help`")
	}
	fdErr := inheritedFDs(o.passFDs)
	repErr := reportWritable(o.report)
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	switch {
	case fdErr != nil:
		return fail(stderr, fdErr)
	case repErr != nil:
		return fail(stderr, sandbox.Usagef("--report %s: %v", o.report, repErr))
	case len(fs.Args()) == 0:
		return fail(stderr, sandbox.Usagef("policy learn: no command given: use warden policy learn [--out FILE] [run flags] -- CMD [ARGS...]"))
	case o.detach || o.name != "" || o.supervise != "" || o.rootfs != "" || o.image != "":
		return fail(stderr, sandbox.Usagef("policy learn: -d, --name, --rootfs and --image cannot be learned from: the policy describes the host's view of one run"))
	}
	if out != "" {
		if err := reportWritable(out); err != nil {
			return fail(stderr, sandbox.Usagef("--out %s: %v", out, err))
		}
	}
	o.seccompAudit = true
	var kept []keptMount
	plan, _, res, err := execRun(o, fs.Args(), stderr, traceAll(&kept))
	status := exitStatus(plan, res, err, stderr)
	if o.stats && res != nil {
		printStats(stderr, res)
	}
	if o.diff && res != nil {
		printDiff(stderr, res)
	}
	if o.report != "" {
		rep := sandbox.NewReport(plan, sandbox.PolicyRef{}, res, err, status, nil)
		if werr := writeReport(o.report, rep.JSON()); werr != nil {
			fmt.Fprintf(stderr, "warden: error: --report %s: %v\n", o.report, werr)
		}
	}
	if err != nil {
		return status
	}
	h, err := sandbox.RealHost()
	if err != nil {
		return fail(stderr, fmt.Errorf("inspect host: %w", err))
	}
	base := o.policy
	switch {
	case base == "":
		base = "default"
	case policies.IsPath(base) && !path.IsAbs(base):
		// extends takes a path relative to the learned policy's own
		// directory, which need not be this one.
		base = path.Join(h.Cwd, base)
	}
	in := learnInput{Base: base, Argv: fs.Args(), Cwd: h.Cwd, Home: h.Home, Project: sandbox.Project(h, h.Cwd),
		Traces: res.Traces, Kept: kept, Denials: res.Denials, Date: time.Now().Format("2006-01-02"), Status: status,
		Symlink: func(p string) bool { fi, err := os.Lstat(p); return err == nil && fi.Mode()&os.ModeSymlink != 0 }}
	text, sum := learnedPolicy(in)
	if out == "" {
		io.WriteString(stdout, text)
	} else if err := writeReport(out, []byte(text)); err != nil {
		return fail(stderr, fmt.Errorf("--out %s: %w", out, err))
	}
	where := "it"
	if out != "" {
		where = out
	}
	fmt.Fprintf(stderr, "warden: learned %s; check %s with `warden policy check`, then run with --policy\n", sum, where)
	if status != 0 {
		fmt.Fprintf(stderr, "warden: warning: the command exited %d: the policy shows what it used until then\n", status)
	}
	return status
}

// traceAll is execRun's prepare for `policy learn`: it resolves the run
// once as it is, traces every directory bind of that plan, and records in
// kept what a learned policy shows as the run did without tracing it: the
// files the view shows on their own, and the policy's own tmpfs mounts.
func traceAll(kept *[]keptMount) func(*sandbox.Options, *sandbox.Host) error {
	return func(opts *sandbox.Options, host *sandbox.Host) error {
		untraced, _, err := sandbox.Resolve(*opts, host)
		if err != nil {
			return err
		}
		opts.Traces = append(opts.Traces, tracedBinds(untraced.Mounts, opts.CachesRoot)...)
		for _, op := range untraced.Mounts {
			if op.Kind == mount.Bind && op.File {
				*kept = append(*kept, keptMount{Path: op.Target, ReadOnly: op.ReadOnly, Why: "a file shown on its own: not traced, kept"})
			}
		}
		for _, m := range opts.Mounts {
			if m.Type == "tmpfs" {
				*kept = append(*kept, keptMount{Path: m.Target, Tmpfs: true, Why: "a tmpfs of " + m.Origin + ", kept"})
			}
		}
		return nil
	}
}

// keptMount is a path a learned policy shows as the run did.
type keptMount struct {
	Path            string
	ReadOnly, Tmpfs bool
	Why             string
}

// tracedBinds are the targets of the plan's directory binds from the host:
// everything the jail shows of it, but warden's own cache directories.
func tracedBinds(ops []mount.Op, cachesRoot string) []string {
	var out []string
	for _, op := range ops {
		if op.Kind != mount.Bind || op.File || op.Target == "/" {
			continue
		}
		if cachesRoot != "" && (op.Source == cachesRoot || strings.HasPrefix(op.Source, cachesRoot+"/")) {
			continue
		}
		out = append(out, op.Target)
	}
	return out
}

const learnUsage = `usage: warden policy learn [--out FILE] [run flags] -- CMD [ARGS...]

Runs CMD as ` + "`warden run`" + ` would (same policy, same flags), with every directory
the jail shows from the host traced and the seccomp profile in audit mode,
then writes a policy that extends the policy CMD ran under and shows only
what CMD used: directories it wrote read-write, what it read read-only, the
rest of the system directories replaced by empty ones, and the syscalls the
profile denied it allowed. Each entry says why in a comment. Tracing makes
CMD slower (docs/trace.md). Exit status: CMD's; 125 when warden failed.

  --out FILE   write the policy to FILE or fd:N (default: standard output)
`

// learnInput is what a learned policy is made from.
type learnInput struct {
	Base      string // the policy CMD ran under (extends)
	Argv      []string
	Cwd, Home string
	Project   string
	Traces    []sandbox.TraceResult
	Kept      []keptMount
	Denials   []seccomp.Denial
	Date      string
	Status    int // CMD's exit status
	// Symlink reports whether a host path is a symbolic link: a policy
	// shows a path through a bind of what it points to, so a link the
	// command followed is shown with the directory that holds it.
	Symlink func(string) bool
}

// collapseAt is how many entries of one directory (below a system
// directory's top level) a learned policy lists one by one before it shows
// the whole directory.
const collapseAt = 8

// learnedPolicy renders the learned policy and a one-line summary.
func learnedPolicy(in learnInput) (string, string) {
	var ro, rw, tmpfs, hide []entry
	for _, t := range in.Traces {
		a := t.Accesses
		switch {
		case t.Err != nil:
			// Not known: shown as before, said why.
			e := entry{in.policyPath(t.Target), "not traced (" + t.Err.Error() + "): shown as under " + in.Base}
			if t.ReadOnly {
				ro = append(ro, e)
			} else {
				rw = append(rw, e)
			}
		case sandbox.IsSystemDir(t.Target):
			shown := systemPaths(a, func(p string) bool { return in.Symlink != nil && in.Symlink(path.Join(t.Target, p)) })
			if len(shown) == 0 {
				hide = append(hide, entry{t.Target, "not used by the command"})
				continue
			}
			tmpfs = append(tmpfs, entry{t.Target, "only what the command used is shown in it (below)"})
			for _, s := range shown {
				// A path another entry shows (a policy's own bind
				// inside a system directory) is that entry's.
				if p := path.Join(t.Target, s.path); !in.ownedElsewhere(p, t.Target) {
					ro = append(ro, entry{in.policyPath(p), s.why})
				}
			}
		default:
			changed := len(a.Written) + len(a.Created) + len(a.Deleted)
			used := changed + len(a.Read) + len(a.StatOnly)
			switch {
			case (changed > 0 || t.Changes > 0) && !t.ReadOnly:
				rw = append(rw, entry{in.policyPath(t.Target), fmt.Sprintf("written by the command: %d created, %d written, %d deleted (%d changes in all, temporary files too)",
					len(a.Created), len(a.Written), len(a.Deleted), t.Changes)})
			case used > 0:
				ro = append(ro, entry{in.policyPath(t.Target), fmt.Sprintf("read by the command: %d files, %d looked up", len(a.Read), len(a.StatOnly))})
			}
		}
	}
	for _, k := range in.Kept {
		e := entry{in.policyPath(k.Path), k.Why}
		switch {
		case k.Tmpfs:
			tmpfs = append(tmpfs, e)
		case k.ReadOnly:
			ro = append(ro, e)
		default:
			rw = append(rw, e)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Learned by `warden policy learn` on %s from:\n#   %s\n", in.Date, strings.Join(in.Argv, " "))
	fmt.Fprintf(&b, "# run in %s under policy %s. It shows only what the command used then:\n", in.Cwd, in.Base)
	b.WriteString("# read it before you trust it, and learn again when the command changes.\n")
	if in.Status != 0 {
		fmt.Fprintf(&b, "# The command exited %d while it was learned from.\n", in.Status)
	}
	fmt.Fprintf(&b, "extends = %s\n", policies.QuoteString(in.Base))
	fmt.Fprintf(&b, "description = %s\n", policies.QuoteString("learned from: "+shortArgv(in.Argv)))
	b.WriteString("# The paths " + in.Base + " shows are replaced by what the command used.\n")
	b.WriteString("replace = [\"filesystem.ro\", \"filesystem.rw\", \"filesystem.mount\"]\n\n[filesystem]\n")
	writeList(&b, "rw", rw)
	writeList(&b, "ro", ro)
	writeList(&b, "tmpfs", tmpfs)
	writeList(&b, "hide", hide)
	var allow []entry
	for _, d := range in.Denials {
		allow = append(allow, entry{policies.QuoteString(d.Syscall), fmt.Sprintf("denied %d× by the profile (first: %s)", d.Count, shortArgv(d.FirstArgv))})
	}
	if len(allow) > 0 {
		b.WriteString("\n[seccomp]\n")
		writeRaw(&b, "allow", allow)
	}
	sum := fmt.Sprintf("%d read-write, %d read-only, %d system directories narrowed, %d hidden, %d syscalls allowed", len(rw), len(ro), len(tmpfs), len(hide), len(allow))
	return b.String(), sum
}

type entry struct{ value, why string }

// writeList writes key = [...] of paths, one per line with its comment.
func writeList(b *strings.Builder, key string, es []entry) {
	if len(es) == 0 {
		return
	}
	for i := range es {
		if !strings.HasPrefix(es[i].value, `"`) {
			es[i].value = policies.QuotePath(es[i].value)
		}
	}
	writeRaw(b, key, es)
}

// writeRaw writes key = [...] of values already rendered.
func writeRaw(b *strings.Builder, key string, es []entry) {
	fmt.Fprintf(b, "%s = [\n", key)
	for _, e := range es {
		fmt.Fprintf(b, "  %s, # %s\n", e.value, e.why)
	}
	b.WriteString("]\n")
}

// ownedElsewhere reports whether p, below system directory sys, is shown by
// another trace or kept path: it, or a directory it lies in below sys.
func (in learnInput) ownedElsewhere(p, sys string) bool {
	under := func(q string) bool { return q != sys && (p == q || strings.HasPrefix(p, q+"/")) }
	for _, t := range in.Traces {
		if under(t.Target) {
			return true
		}
	}
	for _, k := range in.Kept {
		if under(k.Path) {
			return true
		}
	}
	return false
}

// policyPath renders a host path of the learned policy, through ${PROJECT}
// or ${HOME} where it lies in them, so the policy fits another checkout.
func (in learnInput) policyPath(p string) string {
	for _, v := range []struct{ name, dir string }{{"PROJECT", in.Project}, {"HOME", in.Home}} {
		if v.dir == "" || v.dir == "/" {
			continue
		}
		if p == v.dir || strings.HasPrefix(p, v.dir+"/") {
			return policies.QuoteVarPath(v.name, strings.TrimPrefix(p, v.dir))
		}
	}
	return p
}

func shortArgv(argv []string) string {
	s := strings.Join(argv, " ")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// shownPath is one path below a system directory that a learned policy
// shows, and why.
type shownPath struct{ path, why string }

// systemPaths chooses what of a system directory to show: the first two
// components of every path the command read (lib/python3.11, bin/ls,
// ld.so.cache) and every path it only looked up, as it is (so that what
// existed still does); not a directory it only passed through to reach
// another shown path; and where a directory below the top would list
// collapseAt or more of them, the directory instead.
func systemPaths(a sandbox.Accesses, symlink func(string) bool) []shownPath {
	type counts struct{ read, look int }
	cands := map[string]*counts{}
	add := func(p string, read bool) {
		c := cands[p]
		if c == nil {
			c = &counts{}
			cands[p] = c
		}
		if read {
			c.read++
		} else {
			c.look++
		}
	}
	for _, p := range a.Read {
		if p != "." {
			add(cut2(p), true)
		}
	}
	for _, p := range a.StatOnly {
		if p != "." {
			add(p, false)
		}
	}
	// A symlink below the top is shown with its directory, so that it
	// stays a symlink (realpath(3) of /usr/bin/cc through
	// /etc/alternatives/cc is how gcc finds cc1); one at the top (say
	// /etc/localtime) is shown as the file it points to.
	for p, c := range cands {
		if dir := path.Dir(p); dir != "." && symlink(p) {
			delete(cands, p)
			d := cands[dir]
			if d == nil {
				d = &counts{}
				cands[dir] = d
			}
			d.read += c.read
			d.look += c.look
		}
	}
	// A directory only looked up on the way to a shown path is made by
	// the mounts below it: not shown whole.
	for p, c := range cands {
		if c.read == 0 && hasBelow(cands, p) {
			delete(cands, p)
		}
	}
	byParent := map[string]int{}
	for p := range cands {
		if dir := path.Dir(p); dir != "." {
			byParent[dir]++
		}
	}
	merged := map[string]*counts{}
	keys := make([]string, 0, len(cands))
	for p := range cands {
		keys = append(keys, p)
	}
	sort.Strings(keys) // parents before what is below them
	for _, p := range keys {
		c := cands[p]
		shown := p
		if dir := path.Dir(p); dir != "." && byParent[dir] >= collapseAt {
			shown = dir
		}
		if anc := ancestorIn(merged, shown); anc != "" {
			shown = anc // already shown whole
		}
		m := merged[shown]
		if m == nil {
			m = &counts{}
			merged[shown] = m
		}
		m.read += c.read
		m.look += c.look
	}
	var out []shownPath
	for p, c := range merged {
		why := fmt.Sprintf("read by the command: %d", c.read)
		if c.read == 0 {
			why = fmt.Sprintf("looked up by the command: %d", c.look)
		} else if c.look > 0 {
			why += fmt.Sprintf(", looked up: %d", c.look)
		}
		out = append(out, shownPath{p, why})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// hasBelow reports whether a key of m lies below directory p.
func hasBelow[V any](m map[string]V, p string) bool {
	for k := range m {
		if strings.HasPrefix(k, p+"/") {
			return true
		}
	}
	return false
}

// ancestorIn is the key of m that p lies below, "" if none.
func ancestorIn[V any](m map[string]V, p string) string {
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if _, ok := m[d]; ok {
			return d
		}
	}
	return ""
}

// cut2 is p's first two components.
func cut2(p string) string {
	parts := strings.SplitN(p, "/", 3)
	if len(parts) > 2 {
		parts = parts[:2]
	}
	return strings.Join(parts, "/")
}
