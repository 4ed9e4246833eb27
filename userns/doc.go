// Package userns computes and installs the ID maps of a warden jail's user
// namespace.
//
// It owns: reading /etc/subuid and /etc/subgid, deciding between a one-id map
// and a subordinate-range map (Mode auto|single|subuid), computing the map
// lines for "the caller's own id inside" or "the caller as root inside", and
// running the setuid helpers newuidmap/newgidmap against a waiting process.
//
// It must never create namespaces itself, log, or exit: callers (package
// sandbox) decide what to do with its errors and warnings.
package userns
