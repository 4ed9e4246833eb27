#!/bin/bash
# bench-net.sh: throughput of a 1 GiB TCP transfer from a test host into a
# jail under pasta, under slirp4netns and through rootlesskit's builtin port
# driver (for comparison: warden does not use it), and the time netns.Start adds, all
# inside a private network namespace (no packet leaves the machine). Runs as
# root, or as a user with unprivileged user namespaces and a usable
# /dev/net/tun. The reference line is the same transfer over the bare veth.
# The sender's time ends when the last byte is written; the jail sink's
# time (Gbit/s on its line) is the end-to-end figure.
set -euo pipefail
cd "$(dirname "$0")/.."
WARDEN_NETNS_BENCH=1 go test -count=1 -run '^TestBenchNet$' -v ./sandbox/netns/ 2>&1 |
	tee /dev/stderr | grep -E 'bench:|SKIP|FAIL' | sed 's/^ *[a-z_]*_test.go:[0-9]*: //'
