//go:build linux

package main

import (
	"fmt"
	"io"
)

// cmdPolicy is being written (issue 4); this placeholder keeps the build
// green until policy_cmd.go lands.
func cmdPolicy(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "warden: error: policy: not available in this build")
	return exitWarden
}
