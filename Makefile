# warden build. `make` builds a static bin/warden (cgo, libseccomp linked statically).
PREFIX ?= /usr/local
# Go from PATH, else where scripts/setup.sh installs it.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
GOFLAGS_BUILD := -trimpath -tags "netgo osusergo"
LDFLAGS := -s -w -linkmode external -extldflags -static -X github.com/warden-sandbox/warden/sandbox.Version=$(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all build test unit integration install clean bench vet

all: build

build: bin/warden bin/warden-oci

bin/warden: FORCE
	CGO_ENABLED=1 $(GO) build $(GOFLAGS_BUILD) -ldflags '$(LDFLAGS)' -o bin/warden ./cmd/warden

# The OCI runtime's name for engines (podman --runtime, containerd's
# BinaryName): the same binary.
bin/warden-oci: bin/warden
	ln -sf warden bin/warden-oci

FORCE:

# The whole suite, as .ci/run runs it: installs what is missing (as root), builds,
# runs unit and namespace tests and the integration tests as an unprivileged user.
test:
	bash scripts/test.sh

unit:
	CGO_ENABLED=1 $(GO) test ./...

vet:
	$(GO) vet ./...

# On hosts that restrict unprivileged user namespaces with AppArmor (Ubuntu
# >= 23.10), installing as root also installs and loads the profile that
# lets warden use them; `warden check` says whether it is needed.
install: build
	install -D -m 0755 bin/warden $(DESTDIR)$(PREFIX)/bin/warden
	ln -sf warden $(DESTDIR)$(PREFIX)/bin/warden-oci
	@if [ "$$(id -u)" = 0 ] && [ -z "$(DESTDIR)" ] && [ "$$(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns 2>/dev/null)" = 1 ]; then \
		bin/warden check --apparmor-profile $(PREFIX)/bin/warden > /etc/apparmor.d/warden && \
		apparmor_parser -r /etc/apparmor.d/warden && echo "installed /etc/apparmor.d/warden"; \
	fi

bench: build
	bash scripts/bench.sh

clean:
	rm -rf bin
