//go:build linux

package main

import (
	"fmt"
	"io"
)

// cmdSeccomp is being written (issue 5); this placeholder keeps the build
// green until seccomp_cmd.go lands.
func cmdSeccomp(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "warden: error: seccomp: not available in this build")
	return exitWarden
}
