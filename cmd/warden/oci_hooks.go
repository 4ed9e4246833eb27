//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runHooks runs hooks in order, as the runtime spec says (config.md
// "POSIX-platform Hooks"): each in the runtime's namespaces, with the
// container's state JSON on stdin, its args and env, killed after its
// timeout. The first failure stops the list and is returned; with
// goOn (poststart, poststop: failures are only warnings) the rest still
// run, and every failure is returned.
func runHooks(stage string, hooks []specs.Hook, st *ociState, goOn ...bool) error {
	var errs []error
	state, _ := json.Marshal(specs.State{Version: specs.Version, ID: st.ID, Status: st.Status, Pid: st.Pid,
		Bundle: st.Bundle, Annotations: st.Annotations})
	for i, h := range hooks {
		ctx := context.Background()
		var cancel context.CancelFunc = func() {}
		if h.Timeout != nil && *h.Timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		}
		cmd := exec.CommandContext(ctx, h.Path)
		if len(h.Args) > 0 {
			cmd.Args = h.Args
		}
		cmd.Env = h.Env
		cmd.Stdin = bytes.NewReader(state)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		if err != nil {
			if ctx.Err() == context.DeadlineExceeded {
				err = fmt.Errorf("timed out after %ds", *h.Timeout)
			}
			err = fmt.Errorf("%s hook %d (%s): %v: %s", stage, i, h.Path, err, bytes.TrimSpace(out.Bytes()))
			if len(goOn) == 0 || !goOn[0] {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
