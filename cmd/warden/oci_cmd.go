//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox"
	"github.com/warden-sandbox/warden/sandbox/cgroup"
	"github.com/warden-sandbox/warden/sandbox/jails"
)

// warden oci: a runc-compatible command line (docs/oci.md). Engines
// (podman through conmon, containerd's shim) call it as `warden-oci` with
// runc's global flags before the command.

const ociUsage = `Usage: warden oci [global flags] COMMAND [flags] ID   (also: warden-oci ...)

Commands (runc's command line, for podman, containerd and CRI-O):
  create --bundle DIR [--pid-file F] ID   build the container of DIR/config.json; its init waits for start
  start ID                                run the container's process
  state ID                                its state (JSON, as runc prints it)
  kill ID [SIGNAL] [--all]                signal the container's process (default TERM; a name or number)
  delete [--force] ID                     remove a stopped container and its cgroup (--force: kill it first)
  pause ID, resume ID                     freeze, thaw the container's cgroup (cgroup.freeze)
  update [--resources F|-] [--memory N] [--memory-swap N] [--pids-limit N] [--cpu-quota N] [--cpu-period N] ID
                                          new limits in the container's cgroup (runc's JSON LinuxResources)
  list                                    the containers under --root
  exec [--process F] [--detach] [--pid-file F] ID [CMD...]   run a process in a running container
  ps [--format json] ID                   the container's processes
  report ID                               warden's run report of the container: what is enforced (docs/report.md)
  features                                what this runtime supports (JSON)
  spec [--rootless] [--bundle DIR]        write a default config.json

Global flags:
  --root DIR        state directory (default: $XDG_RUNTIME_DIR/warden-oci for a user, /run/warden-oci for root)
  --log FILE        where errors are logged (also on stderr)
  --log-format F    text or json (json: one {"level","msg","time"} line per error, as engines read them)
  --systemd-cgroup, --debug, --rootless   accepted for compatibility

Cgroups: linux.resources limits (memory, swap, pids, cpu quota) are enforced in a cgroup
of the container's own, in the delegated cgroup2 subtree warden runs in, or create fails
(status 125). Without limits, a cgroupsPath asks a rootless warden-oci for one where a
delegated subtree allows it; pause, resume and update need it (docs/oci.md).
`

type ociCtx struct {
	root, log, logFormat string
	stdout, stderr       io.Writer
}

func cmdOCI(args []string, stdout, stderr io.Writer) int {
	c := &ociCtx{stdout: stdout, stderr: stderr}
	fs := pflag.NewFlagSet("oci", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.root, "root", "", "")
	fs.StringVar(&c.log, "log", "", "")
	fs.StringVar(&c.logFormat, "log-format", "text", "")
	fs.Bool("systemd-cgroup", false, "")
	fs.Bool("debug", false, "")
	fs.String("rootless", "auto", "")
	fs.Lookup("rootless").NoOptDefVal = "true"
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprint(stdout, ociUsage)
			return 0
		}
		return c.fail(sandbox.Usagef("%v", err))
	}
	if c.root == "" {
		c.root = ociDefaultRoot()
	}
	rest := fs.Args()
	if len(rest) == 0 || rest[0] == "help" {
		fmt.Fprint(stdout, ociUsage)
		return 0
	}
	cmd, rest := rest[0], rest[1:]
	switch cmd {
	case "create":
		return c.create(rest)
	case "start":
		return c.withID(rest, "start", c.start)
	case "state":
		return c.withID(rest, "state", c.state)
	case "kill":
		return c.kill(rest)
	case "exec":
		return c.exec(rest)
	case "ps":
		return c.ps(rest)
	case "pause":
		return c.withID(rest, "pause", func(id string) error { return c.pause(id, true) })
	case "resume":
		return c.withID(rest, "resume", func(id string) error { return c.pause(id, false) })
	case "update":
		return c.update(rest)
	case "delete":
		return c.delete(rest)
	case "list":
		return c.list(rest)
	case "report":
		return c.withID(rest, "report", c.report)
	case "features":
		return c.features()
	case "spec":
		return c.spec(rest)
	case "--version", "version":
		fmt.Fprintf(stdout, "warden-oci version %s\nspec: %s\n", sandbox.Version, specs.Version)
		return 0
	}
	return c.fail(sandbox.Usagef("oci: unknown command %q; run `warden oci help`", cmd))
}

func ociDefaultRoot() string {
	if os.Geteuid() == 0 && !inUserNS() {
		return "/run/warden-oci"
	}
	if x := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(x) {
		return filepath.Join(x, "warden-oci")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("warden-oci-%d", os.Getuid()))
}

// inUserNS: not in the initial user namespace (as under rootless podman).
func inUserNS() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	return err == nil && !strings.HasPrefix(strings.Join(strings.Fields(string(b)), " "), "0 0 4294967295")
}

// fail prints err on stderr and, as engines read it, to --log.
func (c *ociCtx) fail(err error) int {
	msg := err.Error()
	fmt.Fprintf(c.stderr, "warden-oci: %s\n", msg)
	c.logf("error", msg)
	var ue *sandbox.UsageError
	var ne *cgroup.NotEnforcedError
	if errors.As(err, &ue) || errors.As(err, &ne) {
		// A bad request, or limits this host cannot enforce: warden's own
		// status (DESIGN.md), as `warden run` exits then.
		return exitWarden
	}
	return 1
}

// logf writes one line to --log (warnings go only there: an engine shows
// the runtime's stderr as the container's).
func (c *ociCtx) logf(level, msg string) {
	if c.log == "" {
		return
	}
	f, err := os.OpenFile(c.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	now := time.Now().Format(time.RFC3339Nano)
	if c.logFormat == "json" {
		b, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": now})
		f.Write(append(b, '\n'))
		return
	}
	fmt.Fprintf(f, "time=%q level=%s msg=%q\n", now, level, msg)
}

var ociIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)

func (c *ociCtx) dir(id string) (string, error) {
	if !ociIDRe.MatchString(id) || len(id) > 1024 {
		return "", sandbox.Usagef("invalid container ID %q: letters, digits and _ . + - only", id)
	}
	return filepath.Join(c.root, id), nil
}

func (c *ociCtx) withID(args []string, name string, fn func(id string) error) int {
	if len(args) != 1 {
		return c.fail(sandbox.Usagef("%s: give exactly one container ID", name))
	}
	if err := fn(args[0]); err != nil {
		return c.fail(err)
	}
	return 0
}

// ociState is a container's state.json: runc's shape (the spec's state
// plus rootfs, created, owner) and what identifies its init.
type ociState struct {
	specs.State
	Rootfs    string    `json:"rootfs"`
	Created   time.Time `json:"created"`
	Owner     string    `json:"owner"`
	InitStart uint64    `json:"init_start"`
	// Hooks run later: poststart by start (which also waits for the
	// startContainer hooks), poststop by delete.
	Hooks *specs.Hooks `json:"hooks,omitempty"`
	// Cgroup is the container's cgroup leaf, for pause, resume, update,
	// ps and delete; nil when it has none.
	Cgroup *cgroup.Record `json:"cgroup,omitempty"`
}

// leaf returns the container's cgroup leaf, or nil when it has none.
func (st *ociState) leaf() (*cgroup.Leaf, error) {
	if st.Cgroup == nil || st.Cgroup.Dir == "" {
		return nil, nil
	}
	return cgroup.Reopen(*st.Cgroup)
}

// statePaused is runc's status of a frozen container (the runtime-spec
// names only creating, created, running and stopped).
const statePaused specs.ContainerState = "paused"

func (c *ociCtx) load(id string) (*ociState, string, error) {
	dir, err := c.dir(id)
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, dir, fmt.Errorf("container %q does not exist", id)
		}
		return nil, dir, err
	}
	var st ociState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, dir, fmt.Errorf("container %q: bad state file: %w", id, err)
	}
	// The status is derived, as runc does: init alive in a frozen cgroup
	// is paused, alive with the gate still there created, alive without it
	// running, gone stopped.
	switch {
	case !jails.Alive(st.Pid, st.InitStart) || zombie(st.Pid):
		st.Status, st.Pid = specs.StateStopped, 0
	case st.frozen():
		st.Status = statePaused
	case fileExists(filepath.Join(dir, sandbox.GateFifo)):
		st.Status = specs.StateCreated
	default:
		st.Status = specs.StateRunning
	}
	return &st, dir, nil
}

// zombie: the process has exited and waits to be reaped (by conmon, a
// shim, or whoever adopted it): the container has stopped.
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

// frozen: the container's cgroup says "frozen 1" (pause).
func (st *ociState) frozen() bool {
	leaf, err := st.leaf()
	return err == nil && leaf != nil && leaf.Frozen()
}

func fileExists(p string) bool { _, err := os.Lstat(p); return err == nil }

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (c *ociCtx) create(args []string) int {
	fs := pflag.NewFlagSet("create", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	bundle := fs.StringP("bundle", "b", "", "")
	pidFile := fs.String("pid-file", "", "")
	console := fs.String("console-socket", "", "")
	fs.Bool("no-pivot", false, "")
	fs.Bool("no-new-keyring", false, "")
	fs.Int("preserve-fds", 0, "")
	if err := fs.Parse(args); err != nil {
		return c.fail(sandbox.Usagef("create: %v", err))
	}
	if fs.NArg() != 1 {
		return c.fail(sandbox.Usagef("create: give exactly one container ID"))
	}
	id := fs.Arg(0)
	dir, err := c.dir(id)
	if err != nil {
		return c.fail(err)
	}
	if *bundle == "" {
		*bundle, _ = os.Getwd()
	}
	b, err := filepath.Abs(*bundle)
	if err != nil {
		return c.fail(err)
	}
	spec, err := readSpec(b)
	if err != nil {
		return c.fail(err)
	}
	terminal := spec.Process != nil && spec.Process.Terminal
	if terminal && *console == "" {
		return c.fail(sandbox.Usagef("create: process.terminal is true: give --console-socket PATH, where the terminal's master is sent"))
	} else if !terminal && *console != "" {
		return c.fail(sandbox.Usagef("create: --console-socket needs process.terminal = true in config.json"))
	}
	if err := os.MkdirAll(c.root, 0o700); err != nil {
		return c.fail(fmt.Errorf("state directory %s: %w", c.root, err))
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return c.fail(fmt.Errorf("container %q already exists", id))
		}
		return c.fail(fmt.Errorf("state directory: %w", err))
	}
	pid, err := c.build(spec, b, dir, id, *console)
	if err != nil {
		os.RemoveAll(dir)
		return c.fail(err)
	}
	if *pidFile != "" {
		if err := writeFileAtomic(*pidFile, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			unix.Kill(pid, unix.SIGKILL)
			os.RemoveAll(dir)
			return c.fail(fmt.Errorf("--pid-file %s: %w", *pidFile, err))
		}
	}
	return 0
}

// build makes the container: the gate, the plan, the jail (and its cgroup
// leaf), the state. A failure after the jail exists kills it and removes
// the leaf.
func (c *ociCtx) build(spec *specs.Spec, bundle, dir, id, console string) (int, error) {
	if err := unix.Mkfifo(filepath.Join(dir, sandbox.GateFifo), 0o600); err != nil {
		return 0, fmt.Errorf("start gate: %w", err)
	}
	plan, warns, err := sandbox.PlanFromSpec(spec, bundle, dir)
	if err != nil {
		return 0, err
	}
	plan.Console = console
	if plan.Hooks != nil {
		// The state the createContainer and startContainer hooks read,
		// with init's pid once Create knows it.
		plan.Hooks.State = func(status string, pid int) []byte {
			b, _ := json.Marshal(specs.State{Version: specs.Version, ID: id, Status: specs.ContainerState(status), Pid: pid,
				Bundle: bundle, Annotations: spec.Annotations})
			return b
		}
	}
	// prestart (kept for old engines) and createRuntime hooks run once the
	// container exists: with createContainer hooks, which must come after
	// them, while init waits before its own (Create calls Runtime); else
	// at the end, while init waits at its gate. One failing fails create,
	// and the container goes.
	runtimeHooks := func(st *ociState) error {
		err := runHooks("prestart", spec.Hooks.Prestart, st)
		if err == nil {
			err = runHooks("createRuntime", spec.Hooks.CreateRuntime, st)
		}
		return err
	}
	early := plan.Hooks != nil && len(plan.Hooks.Create) > 0
	if early {
		plan.Hooks.Runtime = func(pid int) error {
			return runtimeHooks(&ociState{State: specs.State{Version: specs.Version, ID: id, Status: specs.StateCreated, Pid: pid,
				Bundle: bundle, Annotations: spec.Annotations}})
		}
	}
	made, err := sandbox.Create(plan, sandbox.OCICgroupName(id), c.stderr)
	if err != nil {
		var ne *cgroup.NotEnforcedError
		if errors.As(err, &ne) {
			return 0, ociLimitsRefused{ne}
		}
		return 0, err
	}
	pid, leaf := made.Pid, made.Leaf
	abandon := func(err error) (int, error) {
		unix.Kill(pid, unix.SIGKILL)
		if rerr := leaf.Remove(); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the container's cgroup: %w", rerr))
		}
		return 0, err
	}
	warns = append(warns, made.Warnings...)
	for _, w := range warns {
		c.logf("warning", w.String())
	}
	info, _ := json.Marshal(plan.ExecInfo(leaf.Path()))
	if err := writeFileAtomic(filepath.Join(dir, execInfoFile), info, 0o600); err != nil {
		return abandon(fmt.Errorf("state: %w", err))
	}
	// warden's own account of what is enforced, as for `warden run`.
	rep := sandbox.NewReport(plan, sandbox.PolicyRef{Name: "oci", Source: filepath.Join(bundle, "config.json")},
		&sandbox.Result{Ending: sandbox.EndContainer, Limits: made.Limits}, nil, 0, warns)
	if err := writeFileAtomic(filepath.Join(dir, reportFile), rep.JSON(), 0o600); err != nil {
		return abandon(fmt.Errorf("state: %w", err))
	}
	start, _ := jails.StartTime(pid)
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	st := ociState{State: specs.State{Version: specs.Version, ID: id, Status: specs.StateCreated, Pid: pid, Bundle: bundle,
		Annotations: spec.Annotations}, Rootfs: rootfs, Created: time.Now().UTC(), Owner: strconv.Itoa(os.Getuid()), InitStart: start,
		Hooks: spec.Hooks}
	if leaf.Path() != "" {
		rec := leaf.Record()
		st.Cgroup = &rec
	}
	if spec.Hooks != nil && !early {
		if err := runtimeHooks(&st); err != nil {
			return abandon(err)
		}
	}
	data, _ := json.Marshal(&st)
	if err := writeFileAtomic(filepath.Join(dir, "state.json"), data, 0o600); err != nil {
		return abandon(fmt.Errorf("state: %w", err))
	}
	leaf.Close()
	return pid, nil
}

// ociLimitsRefused is create's error when this host cannot enforce the
// limits linux.resources asks for: one line with the limits, why and the
// first fix (`warden run` prints the fixes as hint lines; an engine shows
// only the runtime's last line).
type ociLimitsRefused struct{ ne *cgroup.NotEnforcedError }

func (e ociLimitsRefused) Error() string {
	var names, reasons []string
	for _, f := range e.ne.Failures {
		names = append(names, f.Limit)
		if !slices.Contains(reasons, f.Reason) {
			reasons = append(reasons, f.Reason)
		}
	}
	msg := fmt.Sprintf("create: linux.resources asks for limits (%s) that cannot be enforced here: %s", strings.Join(names, ", "), strings.Join(reasons, "; "))
	// The last hint is `warden run`'s --limits=best-effort, which has no
	// counterpart here.
	if h := e.ne.Hints(); len(h) > 1 {
		msg += "; fix: " + h[0]
	}
	return msg
}

func (e ociLimitsRefused) Unwrap() error { return e.ne }

func readSpec(bundle string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, sandbox.Usagef("bundle %s: %v; a bundle is a directory with config.json and the root file system", bundle, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, sandbox.Usagef("%s: %v", filepath.Join(bundle, "config.json"), err)
	}
	return &spec, nil
}

func (c *ociCtx) start(id string) error {
	st, dir, err := c.load(id)
	if err != nil {
		return err
	}
	switch st.Status {
	case specs.StateStopped:
		return errors.New("cannot start a container that has stopped")
	case specs.StateRunning:
		return errors.New("cannot start an already running container")
	case statePaused:
		return errors.New("cannot start a paused container; resume it first")
	}
	fifo := filepath.Join(dir, sandbox.GateFifo)
	fd, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("start gate: %w", err)
	}
	defer unix.Close(fd)
	// init's open for writing returns now; its "0" follows.
	deadline := time.Now().Add(10 * time.Second)
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 100)
		if err != nil && err != unix.EINTR {
			return fmt.Errorf("start gate: %w", err)
		}
		if n > 0 && pfd[0].Revents&unix.POLLIN != 0 {
			var b [1]byte
			if m, _ := unix.Read(fd, b[:]); m == 1 {
				break
			}
		}
		if !jails.Alive(st.Pid, st.InitStart) {
			return errors.New("the container's init is gone")
		}
		if time.Now().After(deadline) {
			return errors.New("the container's init did not pass its start gate in 10 s")
		}
	}
	if err := os.Remove(fifo); err != nil {
		return err
	}
	if st.Hooks != nil && len(st.Hooks.StartContainer) > 0 {
		// The container's process runs its startContainer hooks now and
		// holds the gate open until its execve: a failed hook's report
		// arrives before that, and fails start; the container has
		// stopped then (init kills what is left once the process
		// exits), and it is killed to be sure, as runc kills a
		// container whose start fails.
		if err := awaitStartHooks(fd, st); err != nil {
			jails.Kill(st.Pid, st.InitStart, unix.SIGKILL)
			return fmt.Errorf("start: %w", err)
		}
	}
	if st.Hooks != nil && len(st.Hooks.Poststart) > 0 {
		// A failing poststart hook is a warning: the container runs.
		st.Status = specs.StateRunning
		if err := runHooks("poststart", st.Hooks.Poststart, st, true); err != nil {
			fmt.Fprintf(c.stderr, "warden-oci: warning: %v\n", err)
			c.logf("warning", err.Error())
		}
	}
	return nil
}

// awaitStartHooks reads the start gate fd until every writer has closed
// it (the container's process exec'd or exited), or init is gone, and
// returns the failure the process reported there, if any. There is no
// deadline: each hook's own timeout bounds it, as the config sets them.
func awaitStartHooks(fd int, st *ociState) error {
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if n > 0 {
			got = append(got, buf[:n]...)
			continue
		}
		if n == 0 && err == nil {
			break // EOF
		}
		if err != unix.EAGAIN && err != unix.EINTR {
			return fmt.Errorf("start gate: %w", err)
		}
		if !jails.Alive(st.Pid, st.InitStart) || zombie(st.Pid) {
			if n, _ := unix.Read(fd, buf); n > 0 {
				got = append(got, buf[:n]...)
			}
			break
		}
		unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 100)
	}
	if len(got) == 0 {
		return nil
	}
	return sandbox.StartHookFailure(got)
}

// reportFile is warden's run report of a container, in its state directory.
const reportFile = "report.json"

// report prints the container's run report with its current status.
func (c *ociCtx) report(id string) error {
	st, dir, err := c.load(id)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(dir, reportFile))
	if err != nil {
		return fmt.Errorf("container %q: no report: %w", id, err)
	}
	var rep sandbox.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return fmt.Errorf("container %q: bad report: %w", id, err)
	}
	rep.Ending.Kind = string(st.Status)
	// The cgroup's accounting so far; "oom" when the kernel's OOM killer
	// ended the container (memory.oom.group takes init with the rest).
	if leaf, err := st.leaf(); err == nil && leaf != nil && leaf.Path() != "" {
		if cs, err := leaf.Stats(); err == nil {
			rep.Usage.Cgroup = sandbox.CgroupUsage(&cs)
		}
		if st.Status == specs.StateStopped && leaf.Ending() == "oom" {
			rep.Ending.Kind = "oom"
		}
	}
	c.stdout.Write(rep.JSON())
	return nil
}

func (c *ociCtx) state(id string) error {
	st, _, err := c.load(id)
	if err != nil {
		return err
	}
	out := map[string]any{"ociVersion": st.Version, "id": st.ID, "pid": st.Pid, "status": st.Status, "bundle": st.Bundle,
		"rootfs": st.Rootfs, "created": st.Created.Format(time.RFC3339Nano), "owner": st.Owner}
	if len(st.Annotations) > 0 {
		out["annotations"] = st.Annotations
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Fprintln(c.stdout, string(b))
	return nil
}
