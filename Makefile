# Flotilla. `make run` runs the fleet; `make test` runs every test.
# Both install what they need (hack/install-deps.sh) on a fresh Debian 12.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:/usr/local/go/bin:$(PATH)
export GOFLAGS := -buildvcs=false
# containers/image and storage without C libraries (no gpgme, no btrfs). grpcnotrace:
# no golang.org/x/net/trace, whose html/template (with imaged's own short-name
# resolution) would keep every exported method in the daemons' executable (+6 MB).
GOTAGS := containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_zfs,containers_image_docker_daemon_stub,grpcnotrace
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X flotilla.dev/lib/version.Version=$(VERSION)
MODULES := proto lib criproxy imaged sandboxd netd shim ctl bench
# The four daemons are one executable, bin/flotilla, and bin/<daemon> are links to
# it: their processes share its pages (docs/performance.md, "Daemon memory").
# Install with the links kept (cp -P), or four copies lose the sharing.
DAEMONS := criproxy imaged sandboxd netd
BINARIES := flotilla $(DAEMONS) flotilla-shim flotctl
PKGS := flotilla.dev/ctl/cmd/flotilla flotilla.dev/ctl/cmd/flotctl
ROOT ?=

.PHONY: all deps build run test unit e2e critest bench proto proto-check vet clean

all: build

deps:
	@./hack/install-deps.sh

build:
	@mkdir -p bin
	go build -tags '$(GOTAGS)' -ldflags '$(LDFLAGS)' -o bin/ $(PKGS)
	@for d in $(DAEMONS); do ln -sfn flotilla bin/$$d; done
	./shim/build.sh bin/flotilla-shim   # C, like conmon (shim/c/)

# The whole fleet in the foreground, for crictl. ROOT=dir to choose the root.
run: deps build
	./bin/flotctl up $(if $(ROOT),--root $(ROOT))

proto: deps
	./proto/gen.sh

# Fails when the committed generated code differs from what `make proto` makes.
proto-check: deps
	@tmp=$$(mktemp -d) && cp -r proto "$$tmp/" && "$$tmp/proto/gen.sh" && \
	if ! diff -r -q proto "$$tmp/proto" >/dev/null; then \
		diff -r proto "$$tmp/proto" | head -40; rm -rf "$$tmp"; \
		echo "proto-check: generated code is stale: run 'make proto' and commit"; exit 1; \
	fi; rm -rf "$$tmp"; echo "proto-check: generated code is current"

vet:
	go vet -tags '$(GOTAGS)' $(addprefix ./,$(addsuffix /...,$(MODULES))) ./test/e2e/...

unit:
	go test -tags '$(GOTAGS)' -count=1 $(addprefix ./,$(addsuffix /...,$(MODULES)))

e2e: build
	FLOTILLA_BIN=$(CURDIR)/bin go test -tags '$(GOTAGS)' -count=1 -timeout 40m ./test/e2e/... $(E2EFLAGS)

test: deps proto-check build vet unit e2e

critest: deps build
	./hack/critest.sh

bench: deps build
	./hack/bench.sh

clean:
	rm -rf bin
