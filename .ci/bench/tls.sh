#!/usr/bin/env bash
# What TLS on the server port costs (cmd/cairnbench --bench tls): stale reads
# and raft registrations against a plain and a TLS 3-server cluster, same run.
# stdout: only `bench ...` lines; logs go to stderr. Needs bin/cairn (make build).
set -euo pipefail
cd "$(dirname "$0")/../.."
go run ./cmd/cairnbench --bench tls --bin bin/cairn "$@" | grep '^bench '
