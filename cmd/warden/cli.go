//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/policies"
	"github.com/warden-sandbox/warden/sandbox"
	"github.com/warden-sandbox/warden/sandbox/jails"
)

// Exit statuses (DESIGN §2). main is the only place that exits.
const (
	exitTimeout    = 124
	exitWarden     = 125
	exitNotExec    = 126
	exitNotFound   = 127
	exitSignalBase = 128
)

const usage = `warden: run a command in a rootless jail

Usage:
  warden run [flags] -- CMD [ARGS...]   create a jail, run CMD in it, tear it down
  warden run -d [--name N] ... -- CMD   a jail that persists (jail -c persist): return once CMD runs
  warden ls [--json]                    the jails that persist (jls)
  warden exec N [--env K=V] -- CMD      run CMD in jail N (jexec); its exit status is exec's
  warden logs N [-f]                    jail N's log: its command's output
  warden pause|resume N                 freeze or thaw jail N (cgroup.freeze)
  warden stop N [--timeout 10s]         SIGTERM, then the whole jail; its state is removed (jail -r)
  warden check [--json]                 host doctor: what works here, what blocks, the fix
  warden policy list|show|explain|check built-in and user policies; explain = the resolved plan
  warden seccomp show|export PROFILE    seccomp profiles: the rule list, or BPF/PFC for other tools
  warden image import|ls|rm             OCI layouts and docker-save tarballs for run --image
  warden oci create|start|state|kill|delete|...   a runc-compatible OCI runtime (also as warden-oci; docs/oci.md)
  warden version                        print the version
  warden help [run|image]               this text, the flags of run, or the image commands

The default jail: your own uid inside (or root with --as-root), hostname
"warden", a read-only view of the host system (/usr, /etc, ...), the project
(the git top level of the current directory, else the current directory)
writable at its own path, an empty $HOME, private /tmp, /var/tmp and /run, a fresh /proc of the jail's own processes, a minimal /dev, only a
loopback network, an environment cleared to an allow-list, no capabilities.

Examples:
  warden run -- sh -c 'id; hostname; ls /; ps -e'
  warden run --ro ~/data:/data -- python3 analyse.py /data
  warden run --rw ./out --chdir /src --ro .:/src -- make
  warden run --hide ~/.aws --timeout 30s -- ./untrusted.sh
  echo hi | warden run -- cat

Exit status: the command's own; 128+N if it died of signal N; 124 if
--timeout fired; 125 if warden itself failed; 126 if the command could not be
executed; 127 if it was not found.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitWarden
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "policy":
		return cmdPolicy(args[1:], stdout, stderr)
	case "seccomp":
		return cmdSeccomp(args[1:], stdout, stderr)
	case "oci":
		return cmdOCI(args[1:], stdout, stderr)
	case "image":
		return cmdImage(args[1:], stdout, stderr)
	case "ls":
		return cmdLs(args[1:], stdout, stderr)
	case "logs":
		return cmdLogs(args[1:], stdout, stderr)
	case "exec":
		return cmdExec(args[1:], stdout, stderr)
	case "pause":
		return cmdPause(args[1:], true, stdout, stderr)
	case "resume":
		return cmdPause(args[1:], false, stdout, stderr)
	case "stop":
		return cmdStop(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "warden %s\n", sandbox.Version)
		return 0
	case "help", "-h", "--help":
		if len(args) > 1 && args[1] == "run" {
			printRunHelp(stdout)
			return 0
		}
		if len(args) > 1 && args[1] == "image" {
			return cmdImage([]string{"help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "warden: error: unknown command %q\nwarden: hint: run `warden help`\n", args[0])
	return exitWarden
}

type runOpts struct {
	fs                  *pflag.FlagSet
	policy              string
	memory, limits      string
	cpuWeight, ioWeight int
	tmpfsSize           string
	caches              []string
	pids                int64
	cpus                float64
	seccomp             string
	seccompAudit        bool
	allowHostLoopback   bool
	publish             []string
	ro, rw, tmpfs, hide []string
	env, envPass        []string
	capAdd, rlimits     []string
	passFDs             []int
	chdir, hostname     string
	asRoot              bool
	mapMode, net        string
	logLevel            string
	timeout, killGrace  string
	report              string
	stats               bool
	// overlay, rootfs, image and diff: copy-on-write views and what
	// the command wrote in them (docs/layers.md).
	overlay, trace      []string
	overlayKeep, rootfs string
	image               string
	diff                bool
	rootWarnings        []string
	// explaining: policy explain, which changes nothing (no image import).
	explaining bool
	// detach (-d) starts a jail that persists; name names it; supervise is
	// the hidden mode of the supervisor run -d starts.
	detach          bool
	name, supervise string
}

func runFlags() (*pflag.FlagSet, *runOpts) {
	o := &runOpts{}
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	o.fs = fs
	// Everything after the command name belongs to the command.
	fs.SetInterspersed(false)
	fs.StringVar(&o.policy, "policy", "", "policy `NAME|FILE` (default: the built-in \"default\"; see `warden policy list`)")
	fs.StringArrayVar(&o.ro, "ro", nil, "show host path SRC read-only at DST (`SRC[:DST]`, repeatable)")
	fs.StringArrayVar(&o.rw, "rw", nil, "show host path SRC read-write at DST (`SRC[:DST]`, repeatable)")
	fs.StringArrayVar(&o.tmpfs, "tmpfs", nil, "mount an empty private tmpfs at `DST` (repeatable)")
	fs.StringArrayVar(&o.caches, "cache", nil, "a cache mount `NAME:DST`: a directory warden keeps for you, this policy and NAME, writable in the jail at DST only (repeatable)")
	fs.StringVar(&o.tmpfsSize, "tmpfs-size", "", "cap each of the jail's tmpfs mounts (/tmp, $HOME, /dev/shm, ...) at `SIZE` (default 1G, at most --memory)")
	fs.StringArrayVar(&o.hide, "hide", nil, "make `PATH` empty and unreadable in the jail (repeatable)")
	fs.StringArrayVar(&o.overlay, "overlay", nil, "show host directory SRC copy-on-write at DST (`SRC[:DST]`): the jail writes, SRC never changes (repeatable)")
	fs.StringVar(&o.overlayKeep, "overlay-keep", "", "save the overlay's upper layer (the changes, with whiteouts) into `DIR` instead of discarding it")
	fs.StringArrayVar(&o.trace, "trace", nil, "show directory `DIR` of the jail's view through warden's tracing file system: the report's accesses list what the command read, wrote, created and deleted there (repeatable; slower, docs/trace.md)")
	fs.BoolVar(&o.diff, "diff", false, "print what the command created, modified and deleted in each overlay to stderr at the end")
	fs.StringVar(&o.rootfs, "rootfs", "", "the jail's root is `DIR` (copy-on-write), with warden's own /proc, /dev, /tmp; host paths only with --ro/--rw")
	fs.StringVar(&o.image, "image", "", "the jail's root is image `REF` (an OCI layout, a docker-save tarball, or a name from `warden image ls`); its command, environment and working directory are the defaults")
	fs.StringVar(&o.chdir, "chdir", "", "working `DIR` inside the jail (default: the current directory)")
	fs.StringVar(&o.hostname, "hostname", "warden", "host `NAME` inside the jail")
	fs.BoolVar(&o.asRoot, "as-root", false, "map your uid to root (uid 0) inside; still no capabilities")
	fs.StringVar(&o.mapMode, "map", "", "ID map: single (your id only), auto (plus your /etc/subuid range when newuidmap is installed), subuid (require the range); default: the policy's, else "+policies.DefaultMap)
	fs.StringVar(&o.net, "net", "none", "network: none (loopback only), pasta or slirp4netns (outbound through a user-mode helper), auto (pasta, else slirp4netns), host (the host's network: unsafe)")
	fs.StringArrayVarP(&o.publish, "publish", "p", nil, "publish a jail port on the host: `[HOSTIP:]HOSTPORT:JAILPORT[/tcp|udp]` (HOSTIP defaults to 127.0.0.1; repeatable)")
	fs.BoolVar(&o.allowHostLoopback, "allow-host-loopback", false, "let the jail reach the host's 127.0.0.1 and ::1 (pasta/slirp4netns only)")
	fs.StringVarP(&o.memory, "memory", "m", "", "cgroup memory limit `SIZE` (e.g. 512M, 2G); swap is 0 unless the policy sets memory_swap")
	fs.Int64Var(&o.pids, "pids", 0, "cgroup limit on the number of tasks `N`")
	fs.Float64Var(&o.cpus, "cpus", 0, "cgroup CPU bandwidth limit in CPUs (e.g. 0.5, 2)")
	fs.IntVar(&o.cpuWeight, "cpu-weight", 0, "cgroup cpu.weight `N` (1-10000, default 100): the jail's share of CPU under contention")
	fs.IntVar(&o.ioWeight, "io-weight", 0, "cgroup io.weight `N` (1-10000, default 100): the jail's share of disk I/O under contention")
	fs.StringVar(&o.limits, "limits", "", "what to do when a limit cannot be applied: required (refuse to run), best-effort (warn), off")
	fs.StringVar(&o.seccomp, "seccomp", "", "seccomp `PROFILE`: default, strict, none, or a Docker/OCI JSON file")
	fs.BoolVar(&o.seccompAudit, "seccomp-audit", false, "report each syscall the profile denied, with count and first process")
	fs.StringArrayVar(&o.env, "env", nil, "set `K=V` in the payload's environment (repeatable)")
	fs.StringArrayVar(&o.envPass, "env-pass", nil, "pass host variable `NAME` (glob patterns allowed, repeatable)")
	fs.StringArrayVar(&o.capAdd, "cap-add", nil, "keep capability `CAP` (inside the jail's user namespace only; repeatable)")
	fs.StringArrayVar(&o.rlimits, "rlimit", nil, "resource limit `NAME=SOFT[:HARD]` (nofile, nproc, core, cpu, fsize, as, ...; core is 0 unless given)")
	fs.IntSliceVar(&o.passFDs, "pass-fd", nil, "pass fd `N`, opened where warden starts (e.g. 3<FILE), to the command (renumbered from 3, in order; repeatable)")
	fs.StringVar(&o.timeout, "timeout", "", "kill the jail after `DURATION` (e.g. 30s, 10m); exit status 124")
	fs.StringVar(&o.killGrace, "kill-grace", "5s", "time between SIGTERM and SIGKILL on timeout")
	fs.StringVar(&o.report, "report", "", "write the run report (JSON, docs/report.md) to `FILE` or fd:N when the run ends")
	fs.BoolVar(&o.stats, "stats", false, "print a short summary of the run's resource use to stderr at the end")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log `LEVEL`: debug, info, warn, error")
	fs.BoolVarP(&o.detach, "detach", "d", false, "start a jail that persists: return once the command runs, print its name (warden ls, exec, logs, stop)")
	fs.StringVar(&o.name, "name", "", "with -d: the jail's `NAME` (default: generated)")
	fs.StringVar(&o.supervise, "supervise", "", "")
	fs.MarkHidden("supervise")
	return fs, o
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	// No collection until the jail runs: the start allocates a few MB
	// at most, and a collection costs more than the memory.
	sandbox.PauseGC()
	// Enabling the caught signals takes the runtime a few ms; let it
	// happen while the flags and the policy are read.
	sandbox.CatchSignals()
	fs, o := runFlags()
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			printRunHelp(stdout)
			return 0
		}
		return fail(stderr, sandbox.Usagef("%v", err), "run `warden help run` for the flags")
	}
	// Which descriptors warden inherited is known only until they are
	// marked close-on-exec below (sandbox.Inherited).
	fdErr := inheritedFDs(o.passFDs)
	// Where the report cannot be written, say so before the command runs,
	// not after.
	repErr := reportWritable(o.report)
	// Nothing warden inherited reaches the jail unless named with
	// --pass-fd (the jail's init keeps those and closes every other fd);
	// this also keeps them from the helpers warden runs (pasta, newuidmap).
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if repErr != nil {
		return fail(stderr, sandbox.Usagef("--report %s: %v", o.report, repErr))
	}
	if o.name != "" && !o.detach && o.supervise == "" {
		return fail(stderr, sandbox.Usagef("--name names a jail started with -d"))
	}
	if o.detach && o.supervise == "" {
		return detach(o, args, stdout, stderr)
	}
	var (
		plan  *sandbox.Plan
		warns []sandbox.Warning
		res   *sandbox.Result
	)
	err := fdErr
	if err == nil {
		plan, warns, res, err = execRun(o, fs.Args(), stderr, nil)
	}
	status := exitStatus(plan, res, err, stderr)
	if o.supervise != "" {
		supervisorStopped(o.supervise, res)
	}
	if o.stats && res != nil {
		printStats(stderr, res)
	}
	if o.diff && res != nil {
		printDiff(stderr, res)
	}
	if o.report != "" {
		rep := sandbox.NewReport(plan, sandbox.PolicyRef{}, res, err, status, warns)
		if werr := writeReport(o.report, rep.JSON()); werr != nil {
			fmt.Fprintf(stderr, "warden: error: --report %s: %v\n", o.report, werr)
			if status == 0 {
				status = exitWarden
			}
		}
	}
	return status
}

// reportWritable checks that --report's target can be written when the
// run ends: fd:N must be a descriptor warden inherited (checked before
// warden opens its own); for a file, its directory exists and is
// writable, and the file, if it exists already, is a writable regular
// file. Nothing is created.
func reportWritable(file string) error {
	if file == "" {
		return nil
	}
	if n, ok := strings.CutPrefix(file, "fd:"); ok {
		fd, err := strconv.Atoi(n)
		if err == nil && (fd < 0 || !sandbox.Inherited(fd)) {
			err = unix.EBADF
		}
		if err != nil {
			return fmt.Errorf("not a file descriptor warden inherited; open it where warden starts, e.g. `warden run --report fd:3 -- CMD 3>report.json`")
		}
		return nil
	}
	dir := filepath.Dir(file)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("the directory %s does not exist; create it or write the report elsewhere", dir)
	}
	if fi, err := os.Stat(file); err == nil {
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("exists and is not a regular file; name a file")
		}
		if unix.Access(file, unix.W_OK) != nil {
			return fmt.Errorf("exists and is not writable by you; name another file")
		}
		return nil
	}
	if unix.Access(dir, unix.W_OK|unix.X_OK) != nil {
		return fmt.Errorf("the directory %s is not writable by you; write the report elsewhere", dir)
	}
	return nil
}

// inheritedFDs checks that each --pass-fd names a descriptor warden
// inherited (sandbox.Inherited: open, and not close-on-exec). A number that
// was not inherited could name one of warden's own (the sync socket, the
// runtime's epoll, the pipe go-fuse's initialiser keeps at fd 3) and hand
// it to the jail.
func inheritedFDs(fds []int) error {
	for _, fd := range fds {
		if fd < 3 {
			continue // Resolve rejects these with its own message
		}
		if !sandbox.Inherited(fd) {
			return sandbox.Usagef("--pass-fd %d: warden did not inherit an open file descriptor %d; open it where warden starts, e.g. `warden run --pass-fd %d -- CMD %d<FILE`", fd, fd, fd, fd)
		}
	}
	return nil
}

// execRun resolves and runs; every error it returns is warden's own or a
// failed step of the jail's setup, never the payload's.
//
// prepare, when set, may change the options between the policy and Resolve
// (`policy learn` adds its traces there).
func execRun(o *runOpts, argv []string, stderr io.Writer, prepare func(*sandbox.Options, *sandbox.Host) error) (*sandbox.Plan, []sandbox.Warning, *sandbox.Result, error) {
	t0 := time.Now()
	level := slog.LevelWarn
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, nil, nil, sandbox.Usagef("--log-level %q: use debug, info, warn or error", o.logLevel)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("stage", "parent")
	host, err := sandbox.RealHost()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("inspect host: %w", err)
	}
	opts, err := buildOptions(o, argv, host)
	if err != nil {
		return nil, nil, nil, err
	}
	if prepare != nil {
		if err := prepare(&opts, host); err != nil {
			return nil, nil, nil, err
		}
	}
	plan, warns, err := sandbox.Resolve(opts, host)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, w := range o.rootWarnings {
		warns = append(warns, sandbox.Warning{Loud: true, What: "image user", Reason: w})
	}
	for _, w := range warns {
		if w.Loud {
			fmt.Fprintf(stderr, "warden: warning: %s\n", w)
			continue
		}
		log.Info(w.What, "reason", w.Reason)
	}
	plan.LogLevel = strings.ToLower(level.String())
	if o.supervise != "" {
		plan.Started = supervisorStarted(o.supervise, plan, stderr)
		if root, err := jails.Root(); err == nil {
			plan.ExecSocket = filepath.Join(jails.Dir(root, o.supervise), jails.ExecSocket)
		}
	}
	log.Debug("plan", "map", plan.MapMode, "mounts", len(plan.Mounts), "argv", plan.Argv, "resolve_ms", float64(time.Since(t0).Microseconds())/1000)
	res, err := sandbox.Run(plan, stderr)
	if res != nil {
		// A protection asked for and not applied is never silent (those
		// known before the command started were printed then).
		for _, w := range res.Warnings {
			if !w.Printed {
				fmt.Fprintf(stderr, "warden: warning: %s\n", w)
			}
		}
		for _, d := range res.Denials {
			fmt.Fprintf(stderr, "warden: seccomp denied %s ×%d (first: pid %d %q)\n", d.Syscall, d.Count, d.FirstPID, strings.Join(d.FirstArgv, " "))
		}
	}
	return plan, warns, res, err
}

// exitStatus prints the error (if any) and chooses warden's exit status.
func exitStatus(plan *sandbox.Plan, res *sandbox.Result, err error, stderr io.Writer) int {
	if err != nil {
		var se *sandbox.StageError
		if errors.As(err, &se) && se.Step == "exec" {
			fmt.Fprintf(stderr, "warden: error: exec %q: %s\n", se.Path, se.Errno.Error())
			for _, h := range sandbox.Diagnose(err) {
				fmt.Fprintf(stderr, "warden: hint: %s\n", h)
			}
			if se.Errno == syscall.ENOENT {
				return exitNotFound
			}
			return exitNotExec
		}
		return fail(stderr, err)
	}
	switch res.Ending {
	case sandbox.EndTimeout:
		fmt.Fprintf(stderr, "warden: timeout: the command ran longer than %s and was stopped\n", plan.Timeout)
		return exitTimeout
	case sandbox.EndExit:
		return res.Code
	}
	return exitSignalBase + int(res.Signal)
}

// writeReport writes to FILE or to an inherited fd ("fd:N").
func writeReport(dst string, b []byte) error {
	if n, ok := strings.CutPrefix(dst, "fd:"); ok {
		fd, err := strconv.Atoi(n)
		if err != nil || fd < 0 {
			return fmt.Errorf("want fd:N with N a file descriptor number")
		}
		f := os.NewFile(uintptr(fd), dst)
		_, err = f.Write(b)
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

func fail(stderr io.Writer, err error, hints ...string) int {
	fmt.Fprintf(stderr, "warden: error: %v\n", err)
	for _, h := range append(hints, sandbox.Diagnose(err)...) {
		fmt.Fprintf(stderr, "warden: hint: %s\n", h)
	}
	return exitWarden
}

// printStats is --stats: one short summary, like systemd-run --wait.
func printStats(w io.Writer, r *sandbox.Result) {
	fmt.Fprintf(w, "warden: ended: %s", r.Ending)
	switch r.Ending {
	case sandbox.EndExit:
		fmt.Fprintf(w, " %d", r.Code)
	default:
		if r.Signal != 0 {
			fmt.Fprintf(w, " (%s)", unix.SignalName(r.Signal))
		}
	}
	fmt.Fprintf(w, "; wall %s", r.Wall.Round(time.Millisecond))
	if u := r.Usage; u != nil {
		fmt.Fprintf(w, "; CPU user %s system %s; max RSS %s", time.Duration(u.UserUsec)*time.Microsecond,
			time.Duration(u.SystemUsec)*time.Microsecond, humanKiB(u.MaxRSSKiB))
	}
	if c := r.Cgroup; c != nil {
		fmt.Fprintf(w, "; memory peak %s; pids peak %d", humanKiB(c.MemoryPeak/1024), c.PidsPeak)
		if c.OOMKill > 0 {
			fmt.Fprintf(w, "; OOM kills %d", c.OOMKill)
		}
		if c.ThrottledUsec > 0 {
			fmt.Fprintf(w, "; CPU throttled %s", time.Duration(c.ThrottledUsec)*time.Microsecond)
		}
	}
	if r.Net != nil && r.Net.Mode != "none" {
		fmt.Fprintf(w, "; network %s rx %d B tx %d B", r.Net.Mode, r.NetRx, r.NetTx)
	}
	fmt.Fprintln(w)
}

func humanKiB(k int64) string {
	switch {
	case k >= 1<<20:
		return fmt.Sprintf("%.1fG", float64(k)/(1<<20))
	case k >= 1<<10:
		return fmt.Sprintf("%.1fM", float64(k)/(1<<10))
	}
	return fmt.Sprintf("%dK", k)
}

func printRunHelp(w io.Writer) {
	fs, _ := runFlags()
	fmt.Fprintf(w, "Usage: warden run [flags] [--policy NAME|FILE] -- CMD [ARGS...]\n\nFlags (they override the policy):\n%s", fs.FlagUsages())
	fmt.Fprint(w, `
Examples:
  warden run -- sh -c 'id; hostname; ls /; ps -e'
  warden run --policy build -- make -j4
  warden run --ro ~/data:/data --timeout 10m -- python3 analyse.py /data
  warden run --net pasta -p 8080:8000 -- python3 -m http.server 8000
  warden run --policy ci --report run.json --stats -- make test
  warden run --overlay . --diff -- sh ./untrusted-install.sh     # what would it change?
  warden run --image ./busybox.tar -- sh -c 'cat /etc/os-release'
  warden run --trace . --report r.json -- make                  # what did the build read and write?
  warden policy learn --out make.toml -- make                   # a policy that shows only what make used
`)
}
