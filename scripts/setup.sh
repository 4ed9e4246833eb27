#!/usr/bin/env bash
# setup.sh: install what warden's build and tests need on Debian/Ubuntu, and
# (with --test-user, as scripts/test.sh runs it) also what only the tests use
# and the unprivileged test user with subordinate ids.
# Idempotent. Needs root for apt and useradd; as a normal user it only checks.
set -euo pipefail

PKGS=(gcc make file pkg-config libseccomp-dev uidmap passt slirp4netns iproute2 tmux python3 bubblewrap hyperfine procps util-linux time git busybox-static)
# What only the tests use (--test-user): container engines that drive
# warden-oci, with their own runtime. The tests start their own containerd on
# a private socket: the package's service is not started by this install.
TEST_PKGS=(podman runc containerd)
TEST_USER=${WARDEN_TEST_USER:-wardentest}
if [ "${1:-}" = "--test-user" ]; then
	PKGS+=("${TEST_PKGS[@]}")
fi

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	if [ "$(id -u)" != 0 ]; then
		echo "setup: missing packages: ${missing[*]}" >&2
		echo "setup: run: sudo bash scripts/setup.sh" >&2
		exit 1
	fi
	echo "setup: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# No service starts during the install (containerd's would).
	norc=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && norc=1
	fi
	ok=1
	apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; } || ok=""
	[ -z "$norc" ] || rm -f /usr/sbin/policy-rc.d
	[ -n "$ok" ] || { echo "setup: apt-get install ${missing[*]} failed" >&2; exit 1; }
	if [[ " ${missing[*]} " == *" containerd "* ]] && command -v systemctl >/dev/null; then
		systemctl disable containerd >/dev/null 2>&1 || true
	fi
fi

# Go: the version go.mod names. Without a Go >= 1.21 (which fetches that
# toolchain itself), root installs it from the Go module proxy, where Go's
# own toolchains are published as modules (golang.org/toolchain).
GO_VERSION=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$(dirname "$0")/../go.mod")
have_go() {
	local g=$1
	[ -x "$g" ] || return 1
	local v
	v=$("$g" env GOVERSION 2>/dev/null) || return 1
	v=${v#go}
	[ "$(printf '%s\n' 1.21 "$v" | sort -V | head -1)" = 1.21 ]
}
if ! have_go "$(command -v go 2>/dev/null)"; then
	if have_go /usr/local/go/bin/go; then
		export PATH=/usr/local/go/bin:$PATH
	elif [ "$(id -u)" = 0 ]; then
		for p in curl unzip ca-certificates; do
			dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
				DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$p" >/dev/null
		done
		echo "setup: installing Go $GO_VERSION from the Go module proxy into /usr/local/go"
		tmp=$(mktemp -d)
		curl -fsSL -o "$tmp/go.zip" "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go$GO_VERSION.linux-$(dpkg --print-architecture).zip"
		unzip -q "$tmp/go.zip" -d "$tmp"
		rm -rf /usr/local/go
		mv "$tmp/golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-$(dpkg --print-architecture)" /usr/local/go
		chmod -R a+rX /usr/local/go
		rm -rf "$tmp"
		export PATH=/usr/local/go/bin:$PATH
		echo "setup: add /usr/local/go/bin to your PATH"
	else
		echo "setup: Go >= 1.21 is not installed; run: sudo bash scripts/setup.sh (it installs Go $GO_VERSION)" >&2
		exit 1
	fi
fi

# pasta and slirp4netns open /dev/net/tun as the calling user. Debian and
# Ubuntu ship it 0666 (the tun driver checks ownership of each device it
# creates); some VM images tighten it to 0600, which breaks rootless networking.
if [ "$(id -u)" = 0 ] && [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
	echo "setup: /dev/net/tun is mode $(stat -c %a /dev/net/tun); setting the distribution default 0666"
	chmod 0666 /dev/net/tun
fi

if [ "${1:-}" = "--test-user" ]; then
	[ "$(id -u)" = 0 ] || { echo "setup: --test-user needs root" >&2; exit 1; }
	if ! id "$TEST_USER" >/dev/null 2>&1; then
		useradd --create-home --shell /bin/bash "$TEST_USER"
	fi
	for f in /etc/subuid /etc/subgid; do
		touch "$f"
		grep -q "^$TEST_USER:" "$f" || echo "$TEST_USER:300000:65536" >>"$f"
	done
	# FUSE mounts in a user namespace (fuse/ tests) need /dev/fuse open to
	# users, as Debian's udev rules make it (0666); machines without udev
	# (containers, this project's VMs) leave it 0600.
	if [ -c /dev/fuse ] && [ "$(stat -c %a /dev/fuse)" != 666 ]; then
		chmod 0666 /dev/fuse
	fi
fi
