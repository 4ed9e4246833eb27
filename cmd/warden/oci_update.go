//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"

	"github.com/warden-sandbox/warden/sandbox"
	"github.com/warden-sandbox/warden/sandbox/cgroup"
)

// warden oci: what acts on a container's cgroup leaf: pause, resume,
// update. A container has a leaf when its config asked for limits or named
// a cgroupsPath and a delegated cgroup2 subtree allowed one (docs/oci.md).

// noLeaf is the error of pause, resume and update on a container without a
// cgroup of its own.
func noLeaf(cmd, id string) error {
	return fmt.Errorf("%s: container %q has no cgroup of its own (its config.json asked for no limits and no cgroupsPath, "+
		"or no delegated cgroup2 subtree was found at create); warden-oci freezes and updates only a container's own cgroup", cmd, id)
}

// pause freezes (freeze) or thaws the container's cgroup through
// cgroup.freeze, and waits until cgroup.events says it is done, as runc
// does.
func (c *ociCtx) pause(id string, freeze bool) error {
	cmd := "pause"
	if !freeze {
		cmd = "resume"
	}
	st, _, err := c.load(id)
	if err != nil {
		return err
	}
	switch {
	case st.Status == specs.StateStopped:
		return errors.New("container not running")
	case freeze && st.Status == statePaused:
		return errors.New("container already paused")
	case !freeze && st.Status != statePaused:
		return errors.New("container not paused")
	}
	leaf, err := st.leaf()
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	if leaf == nil || leaf.Path() == "" {
		return noLeaf(cmd, id)
	}
	if _, err := sandbox.Pause(sandbox.ExecInfo{Cgroup: leaf.Path()}, "", freeze, false); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	return nil
}

// updateRequest is what `update` was asked: runc's --resources JSON (a
// LinuxResources), overridden by its per-value flags.
type updateRequest struct {
	resources string // a file, "-" for stdin, "" for none
	memory    string // --memory (bytes, or a size with K, M, G)
	swap      string // --memory-swap (memory plus swap, as runc means it)
	pids      int64  // --pids-limit
	quota     int64  // --cpu-quota
	period    uint64 // --cpu-period
	set       func(name string) bool
}

// parse turns the request into a LinuxResources: the --resources JSON,
// then the flags given on top of it.
func (u *updateRequest) parse(stdin io.Reader) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{}
	if u.resources != "" {
		var data []byte
		var err error
		if u.resources == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(u.resources)
		}
		if err != nil {
			return nil, sandbox.Usagef("update: --resources %s: %v", u.resources, err)
		}
		if err := json.Unmarshal(data, r); err != nil {
			return nil, sandbox.Usagef("update: --resources %s: %v", u.resources, err)
		}
	}
	size := func(flag, v string) (int64, error) {
		n, err := cgroup.ParseSize(v)
		if err != nil {
			return 0, sandbox.Usagef("update: --%s: %v", flag, err)
		}
		return n, nil // "max" is -1: no limit set
	}
	if u.set("memory") || u.set("memory-swap") {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
	}
	if u.set("memory") {
		n, err := size("memory", u.memory)
		if err != nil {
			return nil, err
		}
		r.Memory.Limit = &n
	}
	if u.set("memory-swap") {
		n, err := size("memory-swap", u.swap)
		if err != nil {
			return nil, err
		}
		r.Memory.Swap = &n
	}
	if u.set("pids-limit") {
		r.Pids = &specs.LinuxPids{Limit: &u.pids}
	}
	if u.set("cpu-quota") || u.set("cpu-period") {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		if u.set("cpu-quota") {
			r.CPU.Quota = &u.quota
		}
		if u.set("cpu-period") {
			r.CPU.Period = &u.period
		}
	}
	return r, nil
}

// update writes new limits into the container's cgroup, as `runc update`
// does: --resources FILE (or - for stdin) with runc's JSON LinuxResources,
// and --memory, --memory-swap, --pids-limit, --cpu-quota, --cpu-period.
// Only the limits warden sets (sandbox.LimitsFromResources) are written;
// asking for anything else, or for nothing, is refused before anything
// changes.
func (c *ociCtx) update(args []string) int {
	return c.updateFrom(args, os.Stdin)
}

func (c *ociCtx) updateFrom(args []string, stdin io.Reader) int {
	u, id, err := parseUpdateFlags(args)
	if err != nil {
		return c.fail(err)
	}
	if err := c.updateID(id, u, stdin); err != nil {
		return c.fail(err)
	}
	return 0
}

// parseUpdateFlags parses update's command line: the request and the
// container ID.
func parseUpdateFlags(args []string) (*updateRequest, string, error) {
	fs := pflag.NewFlagSet("update", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	u := &updateRequest{set: func(name string) bool { return fs.Changed(name) }}
	fs.StringVarP(&u.resources, "resources", "r", "", "")
	fs.StringVarP(&u.memory, "memory", "m", "", "")
	fs.StringVar(&u.swap, "memory-swap", "", "")
	fs.Int64Var(&u.pids, "pids-limit", 0, "")
	fs.Int64Var(&u.quota, "cpu-quota", 0, "")
	fs.Uint64Var(&u.period, "cpu-period", 0, "")
	if err := fs.Parse(args); err != nil {
		return nil, "", sandbox.Usagef("update: %v (warden-oci updates --memory, --memory-swap, --pids-limit, --cpu-quota and --cpu-period)", err)
	}
	if fs.NArg() != 1 {
		return nil, "", sandbox.Usagef("update: give exactly one container ID")
	}
	return u, fs.Arg(0), nil
}

func (c *ociCtx) updateID(id string, u *updateRequest, stdin io.Reader) error {
	res, err := u.parse(stdin)
	if err != nil {
		return err
	}
	lim, ignored := sandbox.LimitsFromResources(res)
	if len(ignored) > 0 {
		return sandbox.Usagef("update: warden-oci does not apply %s; it updates memory, swap, pids and cpu quota limits", strings.Join(ignored, ", "))
	}
	if len(lim.Requested()) == 0 {
		return sandbox.Usagef("update: no limit to set (a value of -1 or 0 removes none: warden-oci only sets limits)")
	}
	if err := lim.Validate(); err != nil {
		return sandbox.Usagef("update: %v", err)
	}
	st, dir, err := c.load(id)
	if err != nil {
		return err
	}
	if st.Status == specs.StateStopped {
		return errors.New("update: container not running")
	}
	leaf, err := st.leaf()
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if leaf == nil || leaf.Path() == "" {
		return noLeaf("update", id)
	}
	if err := leaf.Update(lim); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	// The report says what is enforced now.
	if err := updateReport(filepath.Join(dir, reportFile), lim); err != nil {
		c.logf("warning", "update: report: "+err.Error())
	}
	return nil
}

// updateReport marks the limits lim sets as enforced in a container's
// report, naming the value `update` wrote.
func updateReport(path string, lim cgroup.Limits) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep sandbox.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return err
	}
	detail := map[string]string{}
	if lim.Memory > 0 {
		detail[cgroup.LimitMemory] = "memory.max " + cgroup.FormatSize(lim.Memory)
		detail[cgroup.LimitMemorySwap] = "memory.swap.max " + cgroup.FormatSize(lim.MemorySwap)
	} else if lim.MemorySwap > 0 {
		detail[cgroup.LimitMemorySwap] = "memory.swap.max " + cgroup.FormatSize(lim.MemorySwap)
	}
	if lim.Pids > 0 {
		detail[cgroup.LimitPids] = fmt.Sprintf("pids.max %d", lim.Pids)
	}
	if lim.CPUs > 0 {
		detail[cgroup.LimitCPUs] = "cpu.max " + cgroup.CPUMax(lim.CPUs)
	}
	for i, p := range rep.Protections {
		if d, ok := detail[strings.TrimPrefix(p.Name, "limit.")]; ok && strings.HasPrefix(p.Name, "limit.") {
			rep.Protections[i].State, rep.Protections[i].Detail = sandbox.StateEnforced, "set by update: "+d
		}
	}
	return writeFileAtomic(path, rep.JSON(), 0o600)
}
