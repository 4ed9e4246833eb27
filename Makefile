# warden build. `make` builds a static bin/warden (cgo, libseccomp linked statically).
PREFIX ?= /usr/local
GO ?= go
GOFLAGS_BUILD := -trimpath -tags "netgo osusergo"
LDFLAGS := -s -w -linkmode external -extldflags -static -X github.com/warden-sandbox/warden/sandbox.Version=$(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all build test unit integration install clean bench vet

all: build

build: bin/warden

bin/warden: FORCE
	CGO_ENABLED=1 $(GO) build $(GOFLAGS_BUILD) -ldflags '$(LDFLAGS)' -o bin/warden ./cmd/warden

FORCE:

# The whole suite, as .ci/run runs it: installs what is missing (as root), builds,
# runs unit and namespace tests and the integration tests as an unprivileged user.
test:
	bash scripts/test.sh

unit:
	CGO_ENABLED=1 $(GO) test ./...

vet:
	$(GO) vet ./...

install: build
	install -D -m 0755 bin/warden $(DESTDIR)$(PREFIX)/bin/warden

bench: build
	bash scripts/bench.sh

clean:
	rm -rf bin
