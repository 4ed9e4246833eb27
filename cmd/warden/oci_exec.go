//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"

	"github.com/warden-sandbox/warden/sandbox"
)

// execInfoFile holds, in a container's state directory, what `oci exec`
// needs of the container that its process.json does not say: the compiled
// seccomp filter (a process joins with the container's own).
const execInfoFile = "exec.json"

// exec runs a process in a running container, as runc exec does: joined
// into the container's namespaces (opened through its process: warden's
// init is not dumpable), under the container's seccomp filter, with the
// process.json's (or the flags') arguments, environment, directory, user,
// capabilities and rlimits.
func (c *ociCtx) exec(args []string) int {
	fs := pflag.NewFlagSet("exec", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.SetOutput(io.Discard)
	procFile := fs.StringP("process", "p", "", "")
	pidFile := fs.String("pid-file", "", "")
	detach := fs.BoolP("detach", "d", false, "")
	tty := fs.BoolP("tty", "t", false, "")
	console := fs.String("console-socket", "", "")
	cwd := fs.String("cwd", "", "")
	env := fs.StringArrayP("env", "e", nil, "")
	user := fs.StringP("user", "u", "", "")
	caps := fs.StringArray("cap", nil, "")
	fs.Bool("no-new-privs", false, "")
	fs.Int("preserve-fds", 0, "")
	fs.String("process-label", "", "")
	fs.String("apparmor", "", "")
	fs.String("cgroup", "", "")
	fs.Bool("ignore-paused", false, "") // accepted; a paused container is refused anyway
	if err := fs.Parse(args); err != nil {
		return c.fail(sandbox.Usagef("exec: %v", err))
	}
	if fs.NArg() < 1 {
		return c.fail(sandbox.Usagef("exec: give the container ID"))
	}
	id := fs.Arg(0)
	st, dir, err := c.load(id)
	if err != nil {
		return c.fail(err)
	}
	if st.Status == statePaused {
		// Its process would be born frozen in the container's cgroup.
		return c.fail(errors.New("cannot exec in a paused container; resume it first"))
	}
	if st.Status != specs.StateRunning {
		return c.fail(errors.New("container not running"))
	}
	var proc specs.Process
	if *procFile != "" {
		data, err := os.ReadFile(*procFile)
		if err != nil {
			return c.fail(sandbox.Usagef("exec: --process %s: %v", *procFile, err))
		}
		if err := json.Unmarshal(data, &proc); err != nil {
			return c.fail(sandbox.Usagef("exec: --process %s: %v", *procFile, err))
		}
	} else {
		proc = specs.Process{Args: fs.Args()[1:], Cwd: "/", Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}
	}
	if len(proc.Args) == 0 {
		return c.fail(sandbox.Usagef("exec: no command: give --process FILE or ID CMD..."))
	}
	terminal := *tty || proc.Terminal
	if terminal && (*console == "" || !*detach) {
		return c.fail(sandbox.Usagef("exec: a terminal (--tty, process.terminal) needs --console-socket and --detach"))
	} else if !terminal && *console != "" {
		return c.fail(sandbox.Usagef("exec: --console-socket needs --tty or process.terminal"))
	}
	if *cwd != "" {
		proc.Cwd = *cwd
	}
	proc.Env = append(proc.Env, *env...)
	if *user != "" {
		u, g, _ := strings.Cut(*user, ":")
		uid, err1 := strconv.Atoi(u)
		gid, err2 := strconv.Atoi(g)
		if err1 != nil || (g != "" && err2 != nil) {
			return c.fail(sandbox.Usagef("exec: --user %q: want UID[:GID]", *user))
		}
		proc.User.UID, proc.User.GID = uint32(uid), uint32(gid)
	}
	var info sandbox.ExecInfo
	if data, err := os.ReadFile(filepath.Join(dir, execInfoFile)); err == nil {
		json.Unmarshal(data, &info)
	}
	info.Env, info.Cwd = proc.Env, proc.Cwd
	info.Caps, info.Rlimits = nil, nil
	if pc := proc.Capabilities; pc != nil || len(*caps) > 0 {
		var names []string
		if pc != nil {
			for _, n := range pc.Effective {
				if slices.Contains(pc.Bounding, n) {
					names = append(names, n)
				}
			}
		}
		names = append(names, *caps...)
		if info.Caps, err = sandbox.ParseCaps(names); err != nil {
			return c.fail(err)
		}
	}
	for _, r := range proc.Rlimits {
		rl, err := sandbox.ParseRlimit(fmt.Sprintf("%s=%d:%d", strings.ToLower(strings.TrimPrefix(r.Type, "RLIMIT_")), r.Soft, r.Hard))
		if err != nil {
			return c.fail(sandbox.Usagef("exec: process.rlimits %s: %v", r.Type, err))
		}
		info.Rlimits = append(info.Rlimits, rl)
	}
	pids := containerPids(st.Pid)
	if len(pids) == 0 {
		return c.fail(errors.New("container not running"))
	}
	res, err := sandbox.Exec(sandbox.ExecSpec{Info: info, NSPid: pids[0], Argv: proc.Args, Detach: *detach,
		UID: int(proc.User.UID), GID: int(proc.User.GID), Console: *console}, c.stderr)
	if err != nil {
		return c.fail(err)
	}
	if *detach {
		if *pidFile != "" {
			if err := writeFileAtomic(*pidFile, []byte(strconv.Itoa(res.PayloadPid)), 0o644); err != nil {
				return c.fail(fmt.Errorf("--pid-file %s: %w", *pidFile, err))
			}
		}
		return 0
	}
	return exitStatus(nil, res, nil, c.stderr)
}
