//go:build linux

// warden's processes are short-lived and start often: they do not need the
// runtime to size GOMAXPROCS from the cgroup's CPU quota (four file reads
// at every start) nor to keep re-checking it.
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

package main

import (
	"os"
	"runtime"

	"github.com/warden-sandbox/warden/sandbox"
)

// Stage-2 is the jail's PID 1: its main goroutine stays on the main thread
// (the thread group leader), so that what it sets per thread, such as its
// name in ps (PR_SET_NAME), is what /proc/1 shows. An init function that
// locks the thread keeps main on the main thread (runtime.LockOSThread).
func init() {
	if len(os.Args) > 1 && os.Args[1] == "stage2" {
		runtime.LockOSThread()
	}
}

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
