#!/usr/bin/env bash
# setup.sh: install what warden's build and tests need on Debian/Ubuntu, and
# (with --test-user) create the unprivileged test user with subordinate ids.
# Idempotent. Needs root for apt and useradd; as a normal user it only checks.
set -euo pipefail

PKGS=(gcc make file pkg-config libseccomp-dev uidmap passt slirp4netns iproute2 tmux python3 bubblewrap hyperfine procps util-linux)
TEST_USER=${WARDEN_TEST_USER:-wardentest}

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
	apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
fi

if ! command -v go >/dev/null; then
	if [ -x /usr/local/go/bin/go ]; then
		export PATH=/usr/local/go/bin:$PATH
	else
		echo "setup: Go is not installed; install Go >= 1.21 (it fetches the toolchain go.mod names)" >&2
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
fi
