//go:build linux

// Command warden runs a command in a rootless jail. See `warden help`.
package main

import (
	"os"

	"github.com/warden-sandbox/warden/sandbox"
)

func main() {
	// Stage-2 is dispatched before any flag parsing: its argv is ours.
	if len(os.Args) > 1 && os.Args[1] == "stage2" {
		os.Exit(stage2())
	}
	if len(os.Args) > 1 && os.Args[1] == "__probe" {
		os.Exit(sandbox.ProbeMain())
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
