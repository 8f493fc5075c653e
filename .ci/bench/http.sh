#!/usr/bin/env bash
# HTTP API throughput/latency against the leader of a 3-server loopback cluster
# (cmd/cairnbench --bench http). stdout: only `bench ...` lines; logs go to stderr.
# Needs bin/cairn (make build).
set -euo pipefail
cd "$(dirname "$0")/../.."
go run ./cmd/cairnbench --bench http --bin bin/cairn "$@" | grep '^bench '
