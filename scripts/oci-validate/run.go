package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Result is one line of results.jsonl.
type Result struct {
	Name       string  `json:"name"`
	Status     string  `json:"status"` // PASS FAIL ERROR SKIP TIMEOUT
	Pass       int     `json:"pass"`
	Fail       int     `json:"fail"`
	Skip       int     `json:"skip"`
	Todo       int     `json:"todo,omitempty"`
	Planned    int     `json:"planned"`
	ExitCode   int     `json:"exit_code"`
	Signal     string  `json:"signal,omitempty"`
	TimedOut   bool    `json:"timed_out,omitempty"`
	Seconds    float64 `json:"seconds"`
	Reason     string  `json:"reason,omitempty"`
	Runtime    string  `json:"runtime"`
	TAPLog     string  `json:"tap_log"`
	StderrLog  string  `json:"stderr_log"`
	Cleanup    Cleanup `json:"cleanup"`
	HarnessErr string  `json:"harness_error,omitempty"`
}

// Cleanup is what the harness had to clean up after the test.
type Cleanup struct {
	Containers   []string `json:"containers,omitempty"` // "ID (status)" deleted with delete --force
	DeleteErrors []string `json:"delete_errors,omitempty"`
	ListError    string   `json:"list_error,omitempty"` // the runtime's "list --format json" did not work
	Killed       []string `json:"killed_processes,omitempty"`
	Reaped       int      `json:"reaped_orphans,omitempty"`
	Mounts       int      `json:"mounts_unmounted,omitempty"`
	Cgroups      int      `json:"cgroups_removed,omitempty"` // empty cgroup dirs of the suite's paths
	Leftover     string   `json:"leftover,omitempty"`        // anything the harness could not remove
}

func (c Cleanup) String() string {
	var parts []string
	if n := len(c.Containers); n > 0 {
		parts = append(parts, fmt.Sprintf("deleted %d container(s): %s", n, strings.Join(c.Containers, ", ")))
	}
	if len(c.DeleteErrors) > 0 {
		parts = append(parts, "delete failed: "+strings.Join(c.DeleteErrors, "; "))
	}
	if c.ListError != "" {
		parts = append(parts, "cannot list containers: "+c.ListError)
	}
	if len(c.Killed) > 0 {
		parts = append(parts, fmt.Sprintf("killed %d leftover process(es): %s", len(c.Killed), strings.Join(uniq(c.Killed), ",")))
	}
	if c.Cgroups > 0 {
		parts = append(parts, fmt.Sprintf("removed %d empty cgroup dir(s)", c.Cgroups))
	}
	if c.Mounts > 0 {
		parts = append(parts, fmt.Sprintf("unmounted %d leaked mount(s)", c.Mounts))
	}
	if c.Leftover != "" {
		parts = append(parts, "LEFT BEHIND: "+c.Leftover)
	}
	return strings.Join(parts, "; ")
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	name := fs.String("name", "", "test name")
	bin := fs.String("bin", "", "validation program")
	rt := fs.String("runtime", "", "runtime binary (absolute path)")
	cwd := fs.String("cwd", "", "directory with runtimetest and rootfs-ARCH.tar.gz")
	tmp := fs.String("tmp", "", "TMPDIR for the test (bundles); removed afterwards")
	logs := fs.String("logs", "", "directory for NAME.tap and NAME.stderr")
	results := fs.String("results", "", "results.jsonl to append to")
	timeout := fs.Duration("timeout", 60*time.Second, "time limit of the test")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, v := range []struct{ n, v string }{{"name", *name}, {"bin", *bin}, {"runtime", *rt}, {"cwd", *cwd}, {"tmp", *tmp}, {"logs", *logs}, {"results", *results}} {
		if v.v == "" {
			return fmt.Errorf("--%s is required", v.n)
		}
	}
	if err := os.MkdirAll(*tmp, 0o755); err != nil {
		return err
	}
	if ents, _ := os.ReadDir(*tmp); len(ents) > 0 {
		return fmt.Errorf("%s is not empty", *tmp)
	}
	if err := os.MkdirAll(*logs, 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	res := Result{
		Name:      *name,
		Runtime:   *rt,
		TAPLog:    filepath.Join(*logs, *name+".tap"),
		StderrLog: filepath.Join(*logs, *name+".stderr"),
		Planned:   -1,
	}

	cgDirs := suiteCgroupDirs()
	cgBefore := existing(cgDirs)

	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return err
	}
	stR, stW, err := os.Pipe()
	if err != nil {
		return err
	}
	reaper := exec.Command(self, "reap",
		"--timeout", timeout.String(), "--cwd", *cwd,
		"--stdout", res.TAPLog, "--stderr", res.StderrLog, "--", *bin)
	reaper.Env = append(envWithout(os.Environ(), "RUNTIME", "TMPDIR"), "RUNTIME="+*rt, "TMPDIR="+*tmp)
	reaper.Stdin = ctlR
	reaper.Stdout = os.Stderr
	reaper.Stderr = os.Stderr
	reaper.ExtraFiles = []*os.File{stW}
	if err := reaper.Start(); err != nil {
		return err
	}
	ctlR.Close()
	stW.Close()
	events := bufio.NewScanner(stR)
	next := func() (reapEvent, error) {
		var ev reapEvent
		if !events.Scan() {
			return ev, errors.New("the reaper ended without reporting")
		}
		return ev, json.Unmarshal(events.Bytes(), &ev)
	}

	exit, err := next()
	if err != nil {
		ctlW.Close()
		reaper.Wait()
		return err
	}
	if exit.Error != "" {
		res.HarnessErr = "cannot start the test: " + exit.Error
	}
	res.ExitCode, res.Signal, res.TimedOut = exit.ExitCode, exit.Signal, exit.TimedOut
	res.Seconds = float64(exit.DurationMS) / 1000

	// Containers the test left in the runtime's state: delete them through
	// the runtime, so that their cgroups and state go too. Only containers
	// whose bundle is inside this test's TMPDIR are touched.
	res.Cleanup.Containers, res.Cleanup.DeleteErrors, res.Cleanup.ListError = deleteContainers(*rt, *tmp)

	ctlW.Close()
	done, err := next()
	reaper.Wait()
	if err != nil {
		return err
	}
	res.Cleanup.Killed, res.Cleanup.Reaped = done.Killed, done.Reaped
	if done.Error != "" {
		res.Cleanup.Leftover = done.Error
	}

	var cgFailed []string
	res.Cleanup.Cgroups, cgFailed = removeNewCgroups(cgDirs, cgBefore)
	if len(cgFailed) > 0 {
		res.Cleanup.Leftover = strings.TrimPrefix(res.Cleanup.Leftover+"; cgroups: "+strings.Join(cgFailed, ", "), "; ")
	}

	n, left := unmountUnder(*tmp)
	res.Cleanup.Mounts = n
	if left != "" {
		res.Cleanup.Leftover = strings.TrimPrefix(res.Cleanup.Leftover+"; "+left, "; ")
	} else if msg := removeTree(*tmp); msg != "" {
		res.Cleanup.Leftover = strings.TrimPrefix(res.Cleanup.Leftover+"; "+msg, "; ")
	}

	out, _ := os.ReadFile(res.TAPLog)
	stderr, _ := os.ReadFile(res.StderrLog)
	judge(&res, ParseTAP(bytes.NewReader(out)), stderr)

	line := fmt.Sprintf("%-42s %-7s pass=%-4d fail=%-3d skip=%-4d %6.1fs", res.Name, res.Status, res.Pass, res.Fail, res.Skip, res.Seconds)
	if res.Reason != "" {
		line += "  " + res.Reason
	}
	if c := res.Cleanup.String(); c != "" {
		line += "  [cleanup: " + c + "]"
	}
	fmt.Println(line)

	b, _ := json.Marshal(res)
	f, err := os.OpenFile(*results, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return err
	}
	if res.HarnessErr != "" {
		return errors.New(res.HarnessErr)
	}
	return nil
}

// judge sets Status and Reason from the TAP counts, the exit status and stderr.
func judge(r *Result, t TAP, stderr []byte) {
	r.Pass, r.Fail, r.Skip, r.Todo, r.Planned = t.Pass, t.Fail, t.Skip, t.Todo, t.Planned
	switch {
	case r.HarnessErr != "":
		r.Status, r.Reason = "ERROR", r.HarnessErr
	case r.TimedOut:
		r.Status = "TIMEOUT"
		r.Reason = fmt.Sprintf("killed after the time limit, %d test points printed", t.Points)
	case t.Fail > 0:
		r.Status = "FAIL"
		r.Reason = "first failure: " + t.FirstNot
		if d := diagSummary(t.DiagAfterNot); d != "" {
			r.Reason += " (" + d + ")"
		} else if t.CommentAfterNot != "" {
			r.Reason += " (" + t.CommentAfterNot + ")"
		} else if exitStatusOnly.MatchString(t.FirstNot) {
			// the description is the runtime's exit status: say why
			if s := stderrSummary(stderr); s != "" {
				r.Reason += " (stderr: " + s + ")"
			}
		}
		if r.ExitCode != 0 {
			r.Reason += fmt.Sprintf("; exit status %d", r.ExitCode)
		}
	case r.ExitCode != 0:
		// The program aborted (util.Fatal) without a "not ok": mostly the
		// runtime refused the configuration, sometimes (e.g.
		// process_capabilities_fail) an assertion reported by aborting.
		r.Status = "ERROR"
		r.Reason = fmt.Sprintf("exit status %d", r.ExitCode)
		if r.Signal != "" {
			r.Reason = "killed by " + r.Signal
		}
		if s := stderrSummary(stderr); s != "" {
			r.Reason += ": " + s
		}
	case t.Points == 0:
		// The hook tests (prestart, poststart, poststop, hooks, *_fail)
		// print no test point at all: "1..0", preceded by a YAML error
		// when their check failed. TAP consumers read both as "skipped".
		if e := lastError(t.Diagnostics); e != "" {
			r.Status = "FAIL"
			r.Reason = "no test points, YAML error: " + e
		} else {
			r.Status = "PASS"
			r.Reason = "(no test points and no YAML error: this test reports failures only as a YAML error)"
			if s := stderrSummary(stderr); s != "" {
				r.Reason += " (stderr: " + s + ")"
			}
		}
	case t.Planned < 0:
		r.Status = "ERROR"
		r.Reason = fmt.Sprintf("no plan line after %d test points", t.Points)
	case t.Planned != t.Points:
		r.Status = "ERROR"
		r.Reason = fmt.Sprintf("planned %d test points, printed %d", t.Planned, t.Points)
	case t.Pass == 0 && t.Skip > 0:
		r.Status = "SKIP"
		r.Reason = "skipped: " + t.FirstSkp
	default:
		r.Status = "PASS"
		if t.EmptyStreams > 0 {
			r.Reason = fmt.Sprintf("(%d of its %d TAP documents had no test points)", t.EmptyStreams, t.Streams)
		}
		if s := stderrSummary(stderr); s != "" {
			r.Reason = strings.TrimSpace(r.Reason + " (stderr: " + s + ")")
		}
	}
	r.Reason = oneLine(r.Reason, 300)
}

// lastError is the "error" field of the last YAML diagnostic that has one.
func lastError(ds []map[string]any) string {
	for i := len(ds) - 1; i >= 0; i-- {
		if e, ok := ds[i]["error"].(string); ok && e != "" {
			s := e
			if se, ok := ds[i]["stderr"].(string); ok && se != "" {
				s += " | stderr: " + se
			}
			return s
		}
	}
	return ""
}

func diagSummary(d map[string]any) string {
	if d == nil {
		return ""
	}
	if e, ok := d["error"].(string); ok && e != "" {
		return e
	}
	var parts []string
	for _, k := range []string{"expected", "actual"} {
		if v, ok := d[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %v", k, v))
		}
	}
	return strings.Join(parts, ", ")
}

var exitStatusOnly = regexp.MustCompile(`^exit status \d+$`)

var genericStderr = regexp.MustCompile(`^(exit status \d+|failed to (create|start|delete) the container|failed to read standard streams)$`)

// stderrSummary keeps the informative lines of a test's stderr.
func stderrSummary(b []byte) string {
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || genericStderr.MatchString(l) {
			continue
		}
		keep = append(keep, l)
	}
	if len(keep) == 0 {
		// only generic lines: keep them rather than nothing
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				keep = append(keep, l)
			}
		}
	}
	return strings.Join(keep, " | ")
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max-3] + "..."
	}
	return s
}

func envWithout(env []string, names ...string) []string {
	var out []string
next:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

type listed struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Bundle string `json:"bundle"`
}

func runtimeCmd(rt string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, rt, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %v: %s", filepath.Base(rt), strings.Join(args, " "), err, oneLine(stderr.String(), 200))
	}
	return out, nil
}

// deleteContainers asks the runtime for its containers (runc's
// "list --format json") and force-deletes those whose bundle is under dir.
func deleteContainers(rt, dir string) (deleted, errs []string, listErr string) {
	out, err := runtimeCmd(rt, "list", "--format", "json")
	if err != nil {
		return nil, nil, err.Error()
	}
	var cs []listed
	if s := strings.TrimSpace(string(out)); s != "" && s != "null" {
		if err := json.Unmarshal(out, &cs); err != nil {
			return nil, nil, "list --format json: not a JSON array: " + oneLine(string(out), 120)
		}
	}
	prefixes := []string{dir}
	if real, err := filepath.EvalSymlinks(dir); err == nil && real != dir {
		prefixes = append(prefixes, real)
	}
	var ids []string
	for _, c := range cs {
		inside := false
		for _, p := range prefixes {
			if c.Bundle == p || strings.HasPrefix(c.Bundle, p+"/") {
				inside = true
			}
		}
		if !inside {
			continue
		}
		if _, err := runtimeCmd(rt, "delete", "--force", c.ID); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		deleted = append(deleted, fmt.Sprintf("%s (%s)", c.ID, c.Status))
		ids = append(ids, c.ID)
	}
	if len(ids) == 0 {
		return deleted, errs, ""
	}
	// trust, but verify: is it gone?
	if out, err := runtimeCmd(rt, "list", "--format", "json"); err == nil {
		var after []listed
		json.Unmarshal(out, &after)
		for _, c := range after {
			for i, id := range ids {
				if c.ID == id {
					errs = append(errs, fmt.Sprintf("%s still listed (%s) after delete --force succeeded", id, c.Status))
					deleted[i] = ""
				}
			}
		}
	}
	var kept []string
	for _, d := range deleted {
		if d != "" {
			kept = append(kept, d)
		}
	}
	return kept, errs, ""
}

// unmountUnder detaches every mount at or below dir in this mount
// namespace, deepest first, so that removing dir cannot reach into
// anything mounted there.
func unmountUnder(dir string) (n int, left string) {
	prefixes := []string{filepath.Clean(dir)}
	if real, err := filepath.EvalSymlinks(dir); err == nil && real != prefixes[0] {
		prefixes = append(prefixes, real)
	}
	for round := 0; round < 10; round++ {
		mps := mountsUnder(prefixes)
		if len(mps) == 0 {
			return n, ""
		}
		for _, mp := range mps {
			if err := unix.Unmount(mp, unix.MNT_DETACH); err == nil {
				n++
			}
		}
	}
	if mps := mountsUnder(prefixes); len(mps) > 0 {
		return n, fmt.Sprintf("%d mounts under %s could not be unmounted; not removed", len(mps), dir)
	}
	return n, ""
}

func mountsUnder(prefixes []string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		for _, p := range prefixes {
			if mp == p || strings.HasPrefix(mp, p+"/") {
				out = append(out, mp)
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeTree removes dir without crossing into another file system.
func removeTree(dir string) string {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return ""
	}
	var skipped []string
	var rm func(p string)
	rm = func(p string) {
		var s unix.Stat_t
		if err := unix.Lstat(p, &s); err != nil {
			return
		}
		if s.Dev != st.Dev {
			skipped = append(skipped, p)
			return
		}
		if s.Mode&unix.S_IFMT == unix.S_IFDIR {
			ents, _ := os.ReadDir(p)
			for _, e := range ents {
				rm(filepath.Join(p, e.Name()))
			}
			unix.Rmdir(p)
			return
		}
		unix.Unlink(p)
	}
	rm(dir)
	if len(skipped) > 0 {
		return fmt.Sprintf("%d paths on another file system left under %s", len(skipped), dir)
	}
	if _, err := os.Lstat(dir); err == nil {
		return "could not remove " + dir
	}
	return ""
}

func uniq(ss []string) []string {
	seen := map[string]int{}
	var order []string
	for _, s := range ss {
		if seen[s] == 0 {
			order = append(order, s)
		}
		seen[s]++
	}
	for i, s := range order {
		if seen[s] > 1 {
			order[i] = fmt.Sprintf("%s×%d", s, seen[s])
		}
	}
	return order
}
