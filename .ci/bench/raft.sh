#!/usr/bin/env bash
# Raft write throughput of a 3-server loopback cluster (cmd/cairnbench --bench raft).
# stdout: only `bench ...` lines; logs go to stderr. Needs bin/cairn (make build).
set -euo pipefail
cd "$(dirname "$0")/../.."
go run ./cmd/cairnbench --bench raft --bin bin/cairn "$@" | grep '^bench '
