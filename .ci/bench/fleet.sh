#!/usr/bin/env bash
# Fleet scale (cmd/cairnbench --bench fleet, issue 14): 3 loopback servers,
# 1,000 services; 10,000 client sessions in one process, each ONE forwarder
# connection with ONE subscription stream holding 20 Zipf-skewed services;
# 10 check changes/s for 60 s. Then 1,000 sessions of the old index-watch
# mode for one comparison line, then a fresh cluster and a client agent for
# the 100,000-instance catalog DNS check.
#   bench fleet_fanout_p99_ms=<x> clients=10000 changes=600 deliveries=<n>
#   bench fleet_reads_per_change=<x> clients=10000
#   bench fleet_server_cpu_pct=<x> idle_cpu_pct=<y> clients=10000
#   bench fleet_server_rss_kb_per_client=<x>
#   bench fleet_reads_per_change_index_watch=<x> clients=1000
#   bench catalog_100k_dns_p99_us=<x> base_p99_us=<y>
# The bench raises its open-file limit (the servers inherit it). Extra
# arguments go to cairnbench, e.g. --clients 1000 --churn 20s for a quick run.
# stdout: only `bench ...` lines; logs go to stderr. Needs bin/cairn (make build).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x bin/cairn ] || make build >&2
go run ./cmd/cairnbench --bench fleet --bin bin/cairn --timeout 40m "$@" | grep '^bench '
