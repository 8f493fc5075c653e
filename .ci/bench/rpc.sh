#!/usr/bin/env bash
# Client→server RPC over the forwarder's one connection (cmd/cairnbench --bench rpc):
# a 3-server loopback cluster; an in-process forwarder calls Health.ServiceNodes
# 5,000 times sequentially, then from 256 concurrent streams for --duration (10 s).
#   bench rpc_read_p50_us=<n> p99_us=<n>
#   bench rpc_reads_per_s=<n>
# stdout: only `bench ...` lines; logs go to stderr. Needs bin/cairn (make build).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x bin/cairn ] || make build >&2
go run ./cmd/cairnbench --bench rpc --bin bin/cairn "$@" | grep '^bench '
