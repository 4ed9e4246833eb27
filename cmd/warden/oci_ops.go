//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/sandbox"
	"github.com/warden-sandbox/warden/sandbox/jails"
)

// warden oci: what acts on a container after create: kill, delete, list,
// ps (pause, resume and update: oci_update.go).

func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, sandbox.Usagef("kill: unknown signal %q", s)
}

func (c *ociCtx) kill(args []string) int {
	fs := pflag.NewFlagSet("kill", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	all := fs.BoolP("all", "a", false, "")
	sigFlag := fs.StringP("signal", "s", "", "")
	if err := fs.Parse(args); err != nil {
		return c.fail(sandbox.Usagef("kill: %v", err))
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return c.fail(sandbox.Usagef("kill: give the container ID and, optionally, the signal"))
	}
	sigName := "TERM"
	if fs.NArg() == 2 {
		sigName = fs.Arg(1)
	} else if *sigFlag != "" {
		sigName = *sigFlag
	}
	sig, err := parseSignal(sigName)
	if err != nil {
		return c.fail(err)
	}
	st, _, err := c.load(fs.Arg(0))
	if err != nil {
		return c.fail(err)
	}
	if st.Status == specs.StateStopped {
		return c.fail(errors.New("container not running"))
	}
	if err := signalContainer(st, sig, *all); err != nil {
		return c.fail(err)
	}
	return 0
}

// signalContainer: SIGKILL (or any signal before start) ends the container
// through its init (the kernel delivers SIGKILL to a pid namespace's init
// from outside, and with it every process of the namespace); another signal
// goes to the container's process, or with --all to every process of the
// container but warden's init.
func signalContainer(st *ociState, sig syscall.Signal, all bool) error {
	if sig == unix.SIGKILL || st.Status == specs.StateCreated {
		if sig != unix.SIGKILL && (sig == unix.SIGCONT || sig == unix.SIGWINCH || sig == unix.SIGCHLD || sig == unix.SIGURG) {
			return nil // nothing to do before the process runs
		}
		return jails.Kill(st.Pid, st.InitStart, unix.SIGKILL)
	}
	pids := containerPids(st.Pid)
	if !all && len(pids) > 0 {
		pids = pids[:1] // the payload: init's only child
	}
	if len(pids) == 0 {
		return errors.New("container not running")
	}
	for _, p := range pids {
		if err := unix.Kill(p, sig); err != nil && err != unix.ESRCH {
			return fmt.Errorf("kill %d: %w", p, err)
		}
	}
	return nil
}

// containerPids lists the processes of init's pid namespace but init,
// init's children first.
func containerPids(initPid int) []int {
	var out []int
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", initPid, initPid))
	for _, f := range strings.Fields(string(kids)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", initPid))
	if err != nil {
		return out
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil || n == initPid || containsInt(out, n) {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", n)); err == nil && l == ns {
			out = append(out, n)
		}
	}
	return out
}

func containsInt(l []int, v int) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

func (c *ociCtx) delete(args []string) int {
	fs := pflag.NewFlagSet("delete", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	force := fs.BoolP("force", "f", false, "")
	if err := fs.Parse(args); err != nil {
		return c.fail(sandbox.Usagef("delete: %v", err))
	}
	if fs.NArg() != 1 {
		return c.fail(sandbox.Usagef("delete: give exactly one container ID"))
	}
	st, dir, err := c.load(fs.Arg(0))
	if err != nil {
		return c.fail(err)
	}
	leaf, err := st.leaf()
	if err != nil {
		return c.fail(fmt.Errorf("delete: %w", err))
	}
	if st.Status != specs.StateStopped {
		if !*force && (st.Status == specs.StateRunning || st.Status == statePaused) {
			return c.fail(fmt.Errorf("cannot delete container %s that is not stopped: %s; use --force", st.ID, st.Status))
		}
		// A created container is deleted as runc does (it never ran);
		// --force kills a running one.
		jails.Kill(st.Pid, st.InitStart, unix.SIGKILL)
		for i := 0; i < 200 && jails.Alive(st.Pid, st.InitStart) && !zombie(st.Pid); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if st.Hooks != nil && len(st.Hooks.Poststop) > 0 {
		// After the container is gone, before its state: failures are
		// warnings (the spec's rule).
		st.Status = specs.StateStopped
		if err := runHooks("poststop", st.Hooks.Poststop, st, true); err != nil {
			fmt.Fprintf(c.stderr, "warden-oci: warning: %v\n", err)
			c.logf("warning", err.Error())
		}
	}
	// The cgroup goes before the state: if it cannot be removed, the
	// state stays and names it, for another delete.
	if leaf != nil {
		if err := leaf.Remove(); err != nil {
			return c.fail(fmt.Errorf("delete: remove the container's cgroup: %w", err))
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return c.fail(err)
	}
	return 0
}

func (c *ociCtx) list(args []string) int {
	fs := pflag.NewFlagSet("list", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	format := fs.StringP("format", "f", "table", "")
	quiet := fs.BoolP("quiet", "q", false, "")
	if err := fs.Parse(args); err != nil {
		return c.fail(sandbox.Usagef("list: %v", err))
	}
	ents, err := os.ReadDir(c.root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return c.fail(err)
	}
	if *format == "json" || *quiet {
		var all []map[string]any
		for _, e := range ents {
			if st, _, err := c.load(e.Name()); err == nil {
				if *quiet {
					fmt.Fprintln(c.stdout, st.ID)
					continue
				}
				all = append(all, map[string]any{"ociVersion": st.Version, "id": st.ID, "pid": st.Pid, "status": st.Status,
					"bundle": st.Bundle, "rootfs": st.Rootfs, "created": st.Created.Format(time.RFC3339Nano), "owner": st.Owner})
			}
		}
		if !*quiet {
			b, _ := json.Marshal(all)
			if all == nil {
				b = []byte("[]")
			}
			fmt.Fprintln(c.stdout, string(b))
		}
		return 0
	}
	fmt.Fprintf(c.stdout, "%-20s %-8s %-8s %-40s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED")
	for _, e := range ents {
		st, _, err := c.load(e.Name())
		if err != nil {
			continue
		}
		fmt.Fprintf(c.stdout, "%-20s %-8d %-8s %-40s %s\n", st.ID, st.Pid, st.Status, st.Bundle, st.Created.Format(time.RFC3339))
	}
	return 0
}

// ps lists the container's processes (host pids), as runc ps --format json.
func (c *ociCtx) ps(args []string) int {
	fs := pflag.NewFlagSet("ps", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	format := fs.StringP("format", "f", "table", "")
	if err := fs.Parse(args); err != nil || fs.NArg() < 1 {
		return c.fail(sandbox.Usagef("ps: give the container ID"))
	}
	st, _, err := c.load(fs.Arg(0))
	if err != nil {
		return c.fail(err)
	}
	pids := []int{}
	if st.Status != specs.StateStopped {
		pids = append([]int{st.Pid}, containerPids(st.Pid)...)
		// With a cgroup of its own: what it holds (exec'd processes join
		// it), warden's init first.
		if leaf, err := st.leaf(); err == nil && leaf != nil {
			if in, err := leaf.Procs(); err == nil {
				pids = []int{st.Pid}
				for _, p := range in {
					if p != st.Pid {
						pids = append(pids, p)
					}
				}
			}
		}
	}
	if *format == "json" {
		b, _ := json.Marshal(pids)
		fmt.Fprintln(c.stdout, string(b))
		return 0
	}
	fmt.Fprintln(c.stdout, "PID")
	for _, p := range pids {
		fmt.Fprintln(c.stdout, p)
	}
	return 0
}
