#!/usr/bin/env bash
# /v1/txn throughput against the leader of a 3-server loopback cluster:
# transactions of 8 KV sets (cmd/cairnbench --bench txn). Report only.
# stdout: only `bench txn_ops_per_s=<x> ops_per_txn=8 ...`; logs go to
# stderr. Needs bin/cairn (make build).
set -euo pipefail
cd "$(dirname "$0")/../.."
go run ./cmd/cairnbench --bench txn --bin bin/cairn "$@" | grep '^bench '
