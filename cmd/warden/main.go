//go:build linux

// warden's processes are short-lived and start often: they do not need the
// runtime to size GOMAXPROCS from the cgroup's CPU quota (four file reads
// at every start) nor to keep re-checking it.
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

package main

import (
	"os"

	"github.com/warden-sandbox/warden/sandbox"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "__probe" {
		os.Exit(sandbox.ProbeMain())
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
