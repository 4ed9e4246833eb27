//go:build !linux

package main

// warden needs Linux namespaces, seccomp and cgroups: there is no build for
// other systems.
var _ = warden_builds_only_on_linux
