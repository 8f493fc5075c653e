#!/usr/bin/env bash
# KV lock handovers on a 3-server loopback cluster (cmd/cairnbench --bench lock):
# 8 sessions contend for one key through the leader's RPC port, each
# acquire+release counting one handover (waiters block on the key).
#   bench lock_handovers_per_s=<n> contenders=8 p50_ms=<x> p99_ms=<y>
# stdout: only `bench ...` lines; logs go to stderr. Needs bin/cairn (make build).
set -euo pipefail
cd "$(dirname "$0")/../.."
go run ./cmd/cairnbench --bench lock --bin bin/cairn --contenders 8 "$@" | grep '^bench '
