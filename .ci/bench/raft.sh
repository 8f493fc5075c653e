#!/usr/bin/env bash
# Raft write throughput of a 3-server loopback cluster (cmd/cairnbench --bench raft):
# registrations at 64, 128 and 256 writers, each line the median of 3 runs
# (min and max beside it), then KV puts at 128 writers.
# stdout: only `bench ...` lines; logs go to stderr. Needs bin/cairn (make build).
set -euo pipefail
cd "$(dirname "$0")/../.."
go run ./cmd/cairnbench --bench raft --bin bin/cairn --raft-writers 64,128,256 --raft-repeat 3 "$@" | grep '^bench '
