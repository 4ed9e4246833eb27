//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/warden-sandbox/warden/sandbox"
)

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("check", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print the checks as JSON")
	profile := fs.String("apparmor-profile", "", "print the AppArmor profile that lets the warden binary at `PATH` use user namespaces, and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(stdout, "Usage: warden check [--json]\n\nProbes this host (a throwaway user namespace, overlayfs, /dev/fuse, cgroups,\nnetwork helpers, seccomp) and prints ok/warn/fail for each item with the fix.\nExit status 1 when an item fails.\n\n%s", fs.FlagUsages())
			return 0
		}
		return fail(stderr, sandbox.Usagef("check: %v", err))
	}
	if *profile != "" {
		fmt.Fprint(stdout, sandbox.AppArmorProfile(*profile))
		return 0
	}
	checks := sandbox.RunChecks(sandbox.RealCheckEnv())
	failed := false
	for _, c := range checks {
		failed = failed || c.Verdict == sandbox.CheckFail
	}
	if *asJSON {
		b, _ := json.MarshalIndent(map[string]any{"checks": checks, "ok": !failed}, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		for _, c := range checks {
			fmt.Fprintf(stdout, "%-5s %-16s %s\n", c.Verdict, c.Name, c.Measured)
			if c.Fix != "" {
				for i, l := range strings.Split(strings.TrimRight(c.Fix, "\n"), "\n") {
					prefix := "fix:"
					if i > 0 {
						prefix = "    "
					}
					fmt.Fprintf(stdout, "%-22s %s %s\n", "", prefix, l)
				}
			}
		}
	}
	if failed {
		return 1
	}
	return 0
}
