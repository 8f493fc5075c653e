#!/usr/bin/env bash
# What TLS on the server port costs (cmd/cairnbench --bench tls): stale reads
# and raft registrations against a plain and a TLS 3-server cluster, same run.
# stdout: only `bench ...` lines; logs go to stderr. Needs bin/cairn (make build).
set -euo pipefail
cd "$(dirname "$0")/../.."
# Both clusters run side by side and the loads alternate between them in
# 5 rounds of 6 s (--tls-rounds, --duration is their sum); medians print.
go run ./cmd/cairnbench --bench tls --bin bin/cairn --duration 30s "$@" | grep '^bench '
