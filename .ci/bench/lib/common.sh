# Shared pieces of the DNS benchmarks .ci/bench/dns.sh and
# .ci/bench/client.sh. Sourced, not run: it lives in a subdirectory so
# `make bench` (which runs .ci/bench/*.sh) does not treat it as a
# benchmark. The caller has `set -euo pipefail` and is in the repo root.
# Env: DNS_BENCH_SECONDS (default 15), CAIRN_BIN (default bin/cairn).
ROOT=$PWD
BIN=${CAIRN_BIN:-$ROOT/bin/cairn}
SECONDS_RUN=${DNS_BENCH_SECONDS:-15}
NAMES=100
# PERF_DIR: when the caller sets it (after sourcing this), run_perf records
# `perf record -g` of the server in each dnsperf run.
PERF_DIR=""

log() { echo "${0##*/}: $*" >&2; }
die() { log "$*"; exit 1; }

# bench_setup installs dnsperf and unbound if missing, builds the binary if
# missing, picks the cores (SERVER_CORE, CLIENT_CORE) and makes the work
# directory WORK, removed with every process in PIDS on exit.
bench_setup() {
	# dig (dnsutils) checks answers; `make bench` on a fresh machine has not
	# run .ci/run, which installs it for the tests.
	if ! command -v dnsperf >/dev/null 2>&1 || ! command -v unbound >/dev/null 2>&1 || ! command -v dig >/dev/null 2>&1; then
		SUDO=""
		[ "$(id -u)" -eq 0 ] || SUDO="sudo"
		log "installing dnsperf, unbound and dnsutils"
		timeout 300 $SUDO apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive timeout 600 $SUDO apt-get install -y -qq dnsperf unbound dnsutils >&2
	fi
	# The Debian package starts a system unbound on :53; ours uses its own port.
	[ -x "$BIN" ] || make build >&2

	SERVER_CORE=0
	CLIENT_CORE=1
	if [ "$(nproc)" -lt 2 ]; then
		log "only one CPU: server and dnsperf share core 0 (numbers are not comparable to 2-core runs)"
		CLIENT_CORE=0
	fi

	WORK=$(mktemp -d)
	PIDS=()
	trap cleanup EXIT INT TERM
}

cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true
	done
	rm -rf "$WORK"
}

# unbound_port prints a port free for TCP and UDP on 127.0.0.1 for unbound,
# which cannot bind port 0 and report it. Cairn agents bind port 0 (start_cairn).
unbound_port() {
	python3 - <<'PY'
import socket
for _ in range(50):
    t = socket.socket(); t.bind(("127.0.0.1", 0)); port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        t.close(); continue
    u.close(); t.close(); print(port); break
PY
}

# start_cairn NAME CORES ARGS... starts `cairn agent --node NAME` pinned to
# CORES with port 0 for every listener and --ready-file $WORK/NAME.ready,
# logging to $WORK/NAME.log; adds it to PIDS, sets AGENT_PID and returns
# once the agent has written its ready file (60 s at most). Agents log at
# warn unless AGENT_LOG_LEVEL says otherwise (client.sh runs its measured
# client agent at the default, info).
start_cairn() {
	local name=$1 cores=$2
	shift 2
	taskset -c "$cores" "$BIN" agent --node "$name" --bind 127.0.0.1 --client 127.0.0.1 \
		--dns-port 0 --http-port 0 --server-port 0 --serf-lan-port 0 --serf-wan-port 0 \
		--ready-file "$WORK/$name.ready" --log-level "${AGENT_LOG_LEVEL:-warn}" "$@" >"$WORK/$name.log" 2>&1 &
	AGENT_PID=$!
	PIDS+=("$AGENT_PID")
	for _ in $(seq 600); do
		[ -s "$WORK/$name.ready" ] && return 0 # written atomically
		kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORK/$name.log" >&2; die "$name exited before it was ready"; }
		sleep 0.1
	done
	tail -20 "$WORK/$name.log" >&2
	die "$name wrote no ready file within 60s"
}

# ready_port NAME KEY prints the port of listener KEY (dns, http, server,
# serf_lan, serf_wan) from NAME's ready file, {"dns": "127.0.0.1:PORT", ...}.
ready_port() {
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]].rsplit(":", 1)[1])' \
		"$WORK/$1.ready" "$2"
}

addr_of() { echo "10.0.$(($1 / 200)).$(($1 % 200 + 1))"; }

# write_names writes the NAMES names svc-<i>.service.consul: the dnsperf
# input $WORK/queries.txt and unbound's $WORK/local-data.conf, with the
# same addresses register gives them in cairn.
write_names() {
	: >"$WORK/queries.txt"
	: >"$WORK/local-data.conf"
	for i in $(seq 1 $NAMES); do
		echo "svc-$i.service.consul A" >>"$WORK/queries.txt"
		echo "    local-data: \"svc-$i.service.consul. 0 IN A $(addr_of "$i")\"" >>"$WORK/local-data.conf"
	done
}

# register HTTP_PORT I registers svc-<I> on node n<I> at addr_of I.
register() {
	curl -sf -X PUT --max-time 2 "http://127.0.0.1:$1/v1/catalog/register" \
		--data "{\"Node\":\"n$2\",\"Address\":\"$(addr_of "$2")\",\"Service\":{\"Service\":\"svc-$2\",\"Port\":80}}" >/dev/null
}

wait_answer() { # port name want
	for _ in $(seq 100); do
		[ "$(dig +short +time=1 +tries=1 @127.0.0.1 -p "$1" "$2" A 2>/dev/null)" = "$3" ] && return 0
		sleep 0.1
	done
	return 1
}

# write_unbound_conf [SERVER_OPTION...] writes $WORK/unbound.conf for
# UNBOUND_PORT serving $WORK/local-data.conf; each SERVER_OPTION (e.g.
# "so-rcvbuf: 4m") is added to the server: clause.
write_unbound_conf() {
	{
		cat <<CONF
server:
    interface: 127.0.0.1
    port: $UNBOUND_PORT
    do-ip6: no
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$WORK"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    num-threads: 1
CONF
		[ $# -eq 0 ] || printf '    %s\n' "$@"
		cat <<CONF
    access-control: 127.0.0.0/8 allow
    local-zone: "consul." static
$(cat "$WORK/local-data.conf")
remote-control:
    control-enable: no
CONF
	} >"$WORK/unbound.conf"
}

# start_unbound [SERVER_OPTION...] starts unbound on UNBOUND_PORT pinned to
# SERVER_CORE, sets UNBOUND_PID and waits until it answers svc-<NAMES>.
start_unbound() {
	write_unbound_conf "$@"
	log "starting unbound (:$UNBOUND_PORT) on core $SERVER_CORE"
	taskset -c $SERVER_CORE unbound -d -c "$WORK/unbound.conf" >"$WORK/unbound.log" 2>&1 &
	UNBOUND_PID=$!
	PIDS+=("$UNBOUND_PID")
	wait_answer "$UNBOUND_PORT" "svc-$NAMES.service.consul" "$(addr_of $NAMES)" || { cat "$WORK/unbound.log" >&2; die "unbound does not answer"; }
}

TCK=$(getconf CLK_TCK)
cpu_ticks() { # utime+stime of a pid; the comm field is skipped first
	sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

wakeups() { # times any thread of a pid was scheduled in (schedstat field 3)
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{n += $3} END {print n + 0}'
}

# run_perf NAME PORT PID [dnsperf args] -> sets QPS and CPU_US
run_perf() {
	local out before after done_q noerr name=$1 port=$2 pid=$3
	shift 3
	before=$(cpu_ticks "$pid")
	local perfpid=""
	if [ -n "$PERF_DIR" ]; then # profile the server of this run
		mkdir -p "$PERF_DIR"
		perf record -q -g -p "$pid" -o "$PERF_DIR/$name-$#.data" -- sleep "$SECONDS_RUN" >/dev/null 2>&1 &
		perfpid=$!
	fi
	out=$(taskset -c $CLIENT_CORE dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" \
		-T 1 -c 20 -q 100 -l "$SECONDS_RUN" "$@" 2>&1) || { echo "$out" >&2; die "dnsperf against $name failed"; }
	after=$(cpu_ticks "$pid")
	[ -z "$perfpid" ] || wait "$perfpid" || true
	echo "$out" | sed "s/^/[$name] /" >&2
	QPS=$(echo "$out" | awk '/Queries per second:/ {print $4}')
	done_q=$(echo "$out" | awk '/Queries completed:/ {print $3}')
	noerr=$(echo "$out" | awk '/Response codes:/ {for (i=1;i<=NF;i++) if ($i=="NOERROR") print $(i+1)}')
	[ -n "$QPS" ] && [ -n "$done_q" ] && [ "$done_q" -gt 0 ] || die "no dnsperf result for $name"
	[ "${noerr:-0}" -eq "$done_q" ] || die "$name answered $done_q queries but only ${noerr:-0} NOERROR"
	CPU_US=$(awk -v t="$((after - before))" -v hz="$TCK" -v q="$done_q" 'BEGIN {printf "%.2f", t / hz * 1e6 / q}')
}

# run_both runs dnsperf for SECONDS_RUN against cairn (DNS_PORT, CAIRN_PID),
# then against unbound (UNBOUND_PORT, UNBOUND_PID), with identical options;
# sets CAIRN_QPS, CAIRN_CPU, UNBOUND_QPS and UNBOUND_CPU.
run_both() {
	log "dnsperf against cairn for ${SECONDS_RUN}s"
	run_perf cairn "$DNS_PORT" "$CAIRN_PID"
	CAIRN_QPS=$QPS CAIRN_CPU=$CPU_US
	log "dnsperf against unbound for ${SECONDS_RUN}s"
	run_perf unbound "$UNBOUND_PORT" "$UNBOUND_PID"
	UNBOUND_QPS=$QPS UNBOUND_CPU=$CPU_US
}
