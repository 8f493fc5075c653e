#!/usr/bin/env bash
# Client-agent DNS (all cache hits): 3 servers + 1 client agent on
# loopback; dnsperf against the client agent and against unbound serving the
# same 100 names as local-data, each server pinned to core 0, dnsperf on
# core 1, identical options, same run. Prints:
#   bench client_dns_qps cairn=<n> unbound=<m> ratio=<n/m> cairn_cpu_us_per_query=<x> unbound_cpu_us_per_query=<y>
#   bench client_cpu_us_per_query_at_20k cairn=<x> unbound=<y>
#   bench client_idle_cpu_pct=<x> wakeups_per_s=<y> unbound_idle_cpu_pct=<u> unbound_wakeups_per_s=<w>
#                             (both idle over the same CLIENT_IDLE_SECONDS,
#                              default 60, after the 20k run: the client
#                              joined to 3 servers with 100 cached names;
#                              CPU from /proc/<pid>/stat, wake-ups = times
#                              any thread was scheduled in, summed over
#                              /proc/<pid>/task/*/schedstat)
#   bench client_rss_mb=<x> anon_mb=<a> file_mb=<f>
#                             (VmRSS after 1,000,000 queries over 10,000
#                              names, all registered: every name is a real
#                              hit; anon/file: RssAnon and RssFile)
#   bench client_idle_10k_names_cpu_pct=<x> wakeups_per_s=<y>
#                             (the same client idle for
#                              CLIENT_IDLE_FULL_SECONDS, default 30, right
#                              after that run)
#   bench client_rss_idle_mb=<x> anon_mb=<a> file_mb=<f> after_s=<s>
#                             (the same client's RSS at the end of that
#                              idle period: what a host pays for 10,000
#                              cached names once the fill is over; the
#                              cache returns a fill burst's garbage to the
#                              OS 5 s after it ends, cache/memory.go)
#   bench miss_p99_ms=<x> ...       (cmd/cairnbench --bench client)
#   bench freshness_p99_ms=<x> ...  (cmd/cairnbench --bench client)
# Server CPU is utime+stime from /proc/<pid>/stat over the dnsperf run,
# divided by the queries answered. unbound gets the same 4 MiB socket
# buffers and SO_REUSEPORT as cairn's front, and room for far more
# queries in flight than dnsperf keeps (-q 100), so neither side is held
# back by its configuration. Env: DNS_BENCH_SECONDS (default 15),
# CAIRN_BIN (default bin/cairn), CLIENT_BENCH_SKIP_GO=1 skips the
# miss/freshness run, CLIENT_BENCH_PERF_DIR=<dir> records `perf record -g`
# of the server in each dnsperf run (<name>-<extra args>.data; perf's own
# cost then shows in the CPU figures).
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/bench/lib/common.sh
PERF_DIR=${CLIENT_BENCH_PERF_DIR:-}
bench_setup

UNBOUND_PORT=$(unbound_port)
write_names

OTHER=$CLIENT_CORE
[ "$(nproc)" -gt 2 ] && OTHER="1-$(($(nproc) - 1))"
CAIRN_FAST_GOSSIP=1 CAIRN_PPROF=1 start_cairn bs1 "$OTHER" --data-dir "$WORK/bs1" --server --bootstrap-expect 3
S1_PID=$AGENT_PID
S1_HTTP=$(ready_port bs1 http)
S1_SERF=$(ready_port bs1 serf_lan)
for n in bs2 bs3; do
	CAIRN_FAST_GOSSIP=1 CAIRN_PPROF=1 start_cairn $n "$OTHER" --data-dir "$WORK/$n" --server --bootstrap-expect 3 --retry-join "127.0.0.1:$S1_SERF"
done
# The measured client agent runs as users start it: default log level, no
# fast gossip, no pprof handler (only when profiling is asked for), so the
# figures hold for the default configuration (issue 19).
if [ -n "${CLIENT_BENCH_PERF_DIR:-}" ]; then
	AGENT_LOG_LEVEL=info CAIRN_PPROF=1 start_cairn bc1 "$SERVER_CORE" --data-dir "$WORK/bc1" --retry-join "127.0.0.1:$S1_SERF"
else
	AGENT_LOG_LEVEL=info start_cairn bc1 "$SERVER_CORE" --data-dir "$WORK/bc1" --retry-join "127.0.0.1:$S1_SERF"
fi
CAIRN_PID=$AGENT_PID
DNS_PORT=$(ready_port bc1 dns)
HTTP_PORT=$(ready_port bc1 http)
log "3 servers on cores $OTHER, client agent (dns :$DNS_PORT) on core $SERVER_CORE"

ok=""
for _ in $(seq 600); do
	kill -0 "$S1_PID" 2>/dev/null || { cat "$WORK/bs1.log" >&2; die "server exited"; }
	if register "$S1_HTTP" 1; then ok=1; break; fi
	sleep 0.1
done
[ -n "$ok" ] || { tail -20 "$WORK/bs1.log" >&2; die "servers did not accept registrations within 60s"; }
# 10,000 services: the first 100 are the dnsperf set, all of them are the
# RSS set. Registered concurrently (raft batches the applies).
seq $((NAMES + 1)) 10000 | xargs -P 16 -I{} curl -sf -X PUT --max-time 10 --retry 3 "http://127.0.0.1:$S1_HTTP/v1/catalog/register" \
	--data '{"Node":"n{}","Address":"10.9.9.9","Service":{"Service":"svc-{}","Port":80}}' -o /dev/null ||
	die "registering 10,000 services failed"
for i in $(seq 2 $NAMES); do register "$S1_HTTP" "$i" || die "register svc-$i failed"; done

wait_answer "$DNS_PORT" "svc-$NAMES.service.consul" "$(addr_of $NAMES)" || { tail -20 "$WORK/bc1.log" >&2; die "client does not answer svc-$NAMES"; }
# Warm every name (and its packed rotations) so the run is all hits.
for _ in 1 2 3 4 5 6; do
	taskset -c $CLIENT_CORE dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/queries.txt" -n 1 >/dev/null 2>&1 || true
done
start_unbound "so-reuseport: yes" "so-rcvbuf: 4m" "so-sndbuf: 4m" \
	"num-queries-per-thread: 4096" "outgoing-range: 8192"

run_both

log "steady 20000 QPS against both"
run_perf cairn "$DNS_PORT" "$CAIRN_PID" -Q 20000
CAIRN_CPU20=$CPU_US
run_perf unbound "$UNBOUND_PORT" "$UNBOUND_PID" -Q 20000
UNBOUND_CPU20=$CPU_US

IDLE=${CLIENT_IDLE_SECONDS:-60}
log "both idle for ${IDLE}s"
C0=$(cpu_ticks "$CAIRN_PID") U0=$(cpu_ticks "$UNBOUND_PID") CW0=$(wakeups "$CAIRN_PID") UW0=$(wakeups "$UNBOUND_PID")
sleep "$IDLE"
C1=$(cpu_ticks "$CAIRN_PID") U1=$(cpu_ticks "$UNBOUND_PID") CW1=$(wakeups "$CAIRN_PID") UW1=$(wakeups "$UNBOUND_PID")
IDLE_LINE=$(awk -v c=$((C1 - C0)) -v u=$((U1 - U0)) -v cw=$((CW1 - CW0)) -v uw=$((UW1 - UW0)) -v hz="$TCK" -v s="$IDLE" 'BEGIN {
	printf "bench client_idle_cpu_pct=%.3f wakeups_per_s=%.1f unbound_idle_cpu_pct=%.3f unbound_wakeups_per_s=%.1f\n", c / hz / s * 100, cw / s, u / hz / s * 100, uw / s
}')

# RSS: 1,000,000 queries over 10,000 distinct registered names (all real
# hits once each name has been asked).
for i in $(seq 1 10000); do echo "svc-$i.service.consul A"; done >"$WORK/names10k.txt"
taskset -c $CLIENT_CORE dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/names10k.txt" -n 100 -c 20 -q 200 >/dev/null 2>&1 || true
RSS_KB=$(awk '/^VmRSS:/ {print $2}' "/proc/$CAIRN_PID/status")
# The split: anonymous memory (heap, stacks) vs file-backed pages (the
# binary's text and tables, shared and reclaimable).
ANON_KB=$(awk '/^RssAnon:/ {print $2}' "/proc/$CAIRN_PID/status")
FILE_KB=$(awk '/^RssFile:/ {print $2}' "/proc/$CAIRN_PID/status")
# Idle again, now holding 10,000 names: the collector must not run when
# nothing allocates (a soft memory limit under the live heap made it run
# 6 times a second here: resolver/runtime.go).
IDLE_FULL=${CLIENT_IDLE_FULL_SECONDS:-30}
log "client idle for ${IDLE_FULL}s holding 10,000 names"
C0=$(cpu_ticks "$CAIRN_PID") CW0=$(wakeups "$CAIRN_PID")
sleep "$IDLE_FULL"
C1=$(cpu_ticks "$CAIRN_PID") CW1=$(wakeups "$CAIRN_PID")
RSS_IDLE_LINE=$(awk -v s="$IDLE_FULL" '/^VmRSS:/ {r = $2} /^RssAnon:/ {a = $2} /^RssFile:/ {f = $2} END {
	printf "bench client_rss_idle_mb=%.1f anon_mb=%.1f file_mb=%.1f after_s=%d\n", r / 1024, a / 1024, f / 1024, s
}' "/proc/$CAIRN_PID/status")
IDLE_FULL_LINE=$(awk -v c=$((C1 - C0)) -v cw=$((CW1 - CW0)) -v hz="$TCK" -v s="$IDLE_FULL" 'BEGIN {
	printf "bench client_idle_10k_names_cpu_pct=%.3f wakeups_per_s=%.1f\n", c / hz / s * 100, cw / s
}')
ENTRIES=$(curl -sf --max-time 5 "http://127.0.0.1:$HTTP_PORT/v1/agent/metrics?format=prometheus" | awk '/^cairn_cache_entries / {print $2}')
log "client cache entries after the RSS run: ${ENTRIES:-?}"
if [ -n "${CLIENT_BENCH_PERF_DIR:-}" ]; then
	curl -sf --max-time 30 "http://127.0.0.1:$HTTP_PORT/debug/pprof/heap" -o "$CLIENT_BENCH_PERF_DIR/client-heap.pprof" || true
	curl -sf --max-time 30 "http://127.0.0.1:$HTTP_PORT/debug/pprof/goroutine?debug=1" -o "$CLIENT_BENCH_PERF_DIR/client-goroutines.txt" || true
	grep -E '^(VmRSS|VmHWM|Threads)' "/proc/$CAIRN_PID/status" >&2
fi

echo "$IDLE_LINE"
echo "$IDLE_FULL_LINE"
echo "$RSS_IDLE_LINE"
awk -v c="$CAIRN_QPS" -v u="$UNBOUND_QPS" -v cc="$CAIRN_CPU" -v uc="$UNBOUND_CPU" -v c20="$CAIRN_CPU20" -v u20="$UNBOUND_CPU20" -v rss="$RSS_KB" -v anon="${ANON_KB:-0}" -v file="${FILE_KB:-0}" 'BEGIN {
	printf "bench client_cpu_us_per_query_at_20k cairn=%s unbound=%s\n", c20, u20
	printf "bench client_rss_mb=%.1f anon_mb=%.1f file_mb=%.1f\n", rss / 1024, anon / 1024, file / 1024
	printf "bench client_dns_qps cairn=%d unbound=%d ratio=%.3f cairn_cpu_us_per_query=%s unbound_cpu_us_per_query=%s\n", c, u, c / u, cc, uc
}'

if [ "${CLIENT_BENCH_SKIP_GO:-}" != 1 ]; then
	cleanup
	PIDS=()
	trap - EXIT INT TERM
	log "miss latency and freshness (cmd/cairnbench --bench client)"
	go run ./cmd/cairnbench --bench client --bin "$BIN" --timeout 10m
fi
