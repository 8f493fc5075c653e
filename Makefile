# Cairn build entry points. `make dev` and `make test` are the quick start.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
GO      ?= go
LDFLAGS := -s -w -X github.com/cairnd/cairn/agent.Version=$(VERSION)
BIN     := bin/cairn

.PHONY: all build dev test test-short bench package vet fmt clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/cairn

dev: build
	$(BIN) agent --dev

# The whole suite. Concurrent packages run under the race detector.
test:
	$(GO) vet ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 25m ./...

test-short:
	$(GO) test -short -count=1 ./...

# Every .ci/bench/*.sh prints its own `bench ...` lines.
bench: build
	@set -e; for f in .ci/bench/*.sh; do echo "# $$f" >&2; bash $$f; done

package: build
	$(GO) run ./packaging/cmd/mkpkg --version $(VERSION) --binary $(BIN) --out dist

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin dist
