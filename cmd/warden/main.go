//go:build linux

// warden's processes are short-lived and start often: they do not need the
// runtime to size GOMAXPROCS from the cgroup's CPU quota (four file reads
// at every start) nor to keep re-checking it.
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

package main

import (
	"os"
	"path/filepath"

	"github.com/warden-sandbox/warden/sandbox"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "__probe" {
		os.Exit(sandbox.ProbeMain())
	}
	// Engines call an OCI runtime by its own name (podman --runtime,
	// containerd's BinaryName): warden-oci is warden oci.
	if filepath.Base(os.Args[0]) == "warden-oci" {
		os.Exit(cmdOCI(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
