#!/usr/bin/env bash
# DNS throughput: `cairn agent --dev` against unbound serving the same 100
# names (A records), each pinned to core 0, dnsperf pinned to core 1 with
# identical options. Prints one line:
#   bench dns_qps cairn=<n> unbound=<m> ratio=<n/m> cairn_cpu_us_per_query=<x> unbound_cpu_us_per_query=<y>
# Server CPU is utime+stime from /proc/<pid>/stat over the dnsperf run,
# divided by the queries answered. Env: DNS_BENCH_SECONDS (default 15),
# CAIRN_BIN (default bin/cairn).
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/bench/lib/common.sh
bench_setup

UNBOUND_PORT=$(unbound_port)
write_names

log "starting cairn agent --dev on core $SERVER_CORE"
start_cairn bench "$SERVER_CORE" --dev
CAIRN_PID=$AGENT_PID
DNS_PORT=$(ready_port bench dns)
HTTP_PORT=$(ready_port bench http)
log "cairn agent --dev: dns :$DNS_PORT, http :$HTTP_PORT"

ok=""
for _ in $(seq 200); do # 20 s for the dev server to elect itself
	kill -0 "$CAIRN_PID" 2>/dev/null || { cat "$WORK/bench.log" >&2; die "cairn agent exited"; }
	if register "$HTTP_PORT" 1; then ok=1; break; fi
	sleep 0.1
done
[ -n "$ok" ] || { tail -20 "$WORK/bench.log" >&2; die "cairn did not accept registrations within 20s"; }
for i in $(seq 2 $NAMES); do register "$HTTP_PORT" "$i" || die "register svc-$i failed"; done

wait_answer "$DNS_PORT" "svc-$NAMES.service.consul" "$(addr_of $NAMES)" || die "cairn does not answer svc-$NAMES"

start_unbound

run_both

awk -v c="$CAIRN_QPS" -v u="$UNBOUND_QPS" -v cc="$CAIRN_CPU" -v uc="$UNBOUND_CPU" 'BEGIN {
	printf "bench dns_qps cairn=%d unbound=%d ratio=%.3f cairn_cpu_us_per_query=%s unbound_cpu_us_per_query=%s\n", c, u, c / u, cc, uc
}'
