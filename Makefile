# Cairn build entry points. `make dev` and `make test` are the quick start.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
GO      ?= go
LDFLAGS := -s -w -X github.com/cairnd/cairn/agent.Version=$(VERSION)
BIN     := bin/cairn

.PHONY: all build dev test test-short bench chaos package vet fmt clean

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

# Fault injection (cluster/chaos, see its README): CHAOS_TRIALS trials of
# CHAOS_DURATION per nemesis against 3 real servers, one `chaos nemesis=...`
# line per nemesis. Partition nemeses need root and iptables. CHAOS_NEMESIS
# picks one nemesis; CHAOS_SEED replays a trial (trial i uses seed+i).
# CHAOS_PARALLEL=k runs k nemeses side by side, each on its own addresses
# (lanes CHAOS_LANE_FIRST.., default 0: a second run beside a first one
# takes other lanes).
CHAOS_TRIALS   ?= 20
CHAOS_DURATION ?= 60s
CHAOS_PARALLEL ?= 1
CHAOS_LANE_FIRST ?= 0
chaos:
	@log=$$(mktemp /tmp/cairn-chaos-XXXXXX.log); \
	CHAOS_TRIALS=$(CHAOS_TRIALS) CHAOS_DURATION=$(CHAOS_DURATION) CHAOS_SEED=$(CHAOS_SEED) CHAOS_NEMESIS=$(CHAOS_NEMESIS) CHAOS_PARALLEL=$(CHAOS_PARALLEL) CHAOS_LANE_FIRST=$(CHAOS_LANE_FIRST) \
		$(GO) test -count=1 -timeout 0 -parallel $(CHAOS_PARALLEL) -v -run '^TestChaos$$' ./cluster/chaos >$$log 2>&1; rc=$$?; \
	grep -E '^chaos ' $$log; \
	if [ $$rc -ne 0 ]; then grep -E -- '--- FAIL|SKIP|artefacts kept|^(FAIL|panic)' $$log; echo "chaos: failed; full log in $$log" >&2; exit $$rc; fi; \
	rm -f $$log

package: build
	$(GO) run ./packaging/cmd/mkpkg --version $(VERSION) --binary $(BIN) --out dist

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin dist
