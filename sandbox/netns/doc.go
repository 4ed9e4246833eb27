// Package netns owns the network of a jail: the choice of mode (none, host,
// pasta, slirp4netns, auto), the probing of the helper binaries, starting a
// helper on the host side against the jail's network namespace, publishing
// ports through the helper's own forwarding, the resolv.conf content that
// points at the helper's DNS, and the byte counters of the jail's interface.
//
// Modes:
//
//	none         the jail's own namespace with only lo (the jail's init brings it up).
//	host         the host's namespace; unsafe, reported as such.
//	pasta        passt's pasta, L2<->L4 translation, no NAT.
//	slirp4netns  libslirp, NAT'd user-mode TCP/IP, 10.0.2.0/24.
//	auto         pasta if installed, else slirp4netns, else an error with a hint.
//
// The host's loopback (127.0.0.0/8, ::1) is not reachable from the jail unless
// Options.AllowHostLoopback is set. For pasta that takes two flags, not one:
// --no-map-gw stops the gateway address from being translated to the host's
// loopback, and "-T none -U none" stops pasta from forwarding the jail's own
// 127.0.0.1:PORT to every port bound on the host's loopback (the default of
// -T/-U is "auto", which does exactly that).
//
// Lifetime of a helper: it is started from a goroutine locked to its OS
// thread with Pdeathsig=SIGKILL, so the kernel kills it when that thread, and
// therefore warden, dies, even by SIGKILL. slirp4netns also gets an exit pipe
// whose write end only warden holds. A pidfd watch on the jail's pid kills the
// helper when the jail ends (pasta does not quit by itself when a pid target
// dies: it holds the namespace open). Stop kills and reaps it.
//
// This package must never log, exit, or send traffic itself; it returns
// Warning values and errors (with a Hint for the host's fix). It imports only
// the standard library, x/sys and its one external library, rootlesskit
// (whose slirp4netns port driver is the API client for published ports).
package netns
