package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// runFleetPhases runs the fleet and watch phases on one 3-server cluster
// with --services registered.
func runFleetPhases(ctx context.Context, o *Options) error {
	f := &o.Fleet
	c, leader, err := startFleetServers(ctx, o)
	if err != nil {
		return err
	}
	defer c.Close()
	logf("registering %d services", f.Services)
	if err := registerFleetServices(ctx, leader, f.Services); err != nil {
		return err
	}
	if err := visibleEverywhere(ctx, c.agents, fleetService(f.Services-1)); err != nil {
		return err
	}
	addrs := make([]string, 0, len(c.agents))
	for _, a := range c.agents {
		addrs = append(addrs, a.rpcAddr())
	}
	r := rand.New(rand.NewSource(14))
	seq := 0 // the last change seq made
	if f.runs("fleet") {
		if seq, err = fleetSubscribed(ctx, o, c, leader, addrs, r); err != nil {
			return err
		}
	}
	if f.runs("watch") {
		if err := fleetIndexWatch(ctx, o, c, leader, addrs, r, seq); err != nil {
			return err
		}
	}
	return nil
}

// fleetSubscribed is the fleet phase: --clients subscribed sessions. It
// returns the last change seq it made.
func fleetSubscribed(ctx context.Context, o *Options, c *cluster, leader *agentProc, addrs []string, r *rand.Rand) (int, error) {
	f := &o.Fleet
	before, err := sampleServers(ctx, c)
	if err != nil {
		return 0, err
	}
	sets := hotSets(r, f.Clients, f.Services, f.Hot)
	fo := newFanout(f.Services, sets, 0)
	logf("starting %d subscribed sessions (%d hot services each)", f.Clients, f.Hot)
	members, err := startFleet(ctx, addrs, sets, fo, func(ctx context.Context, src net.Addr, addrs []string, hot []int, fo *fanout) (fleetMember, error) {
		return startFleetSession(ctx, src, addrs, hot, fo)
	})
	if err != nil {
		return 0, err
	}
	defer stopFleet(members)
	err = measureFleet(ctx, o, c, leader, fo, before, f.Clients, f.Churn, "fleet")
	return fo.last(), err
}

// measureFleet measures a connected fleet: idle CPU and RSS, then the
// churn's fan-out, reads and CPU; it prints the lines of name (fleet or
// watch).
func measureFleet(ctx context.Context, o *Options, c *cluster, leader *agentProc, fo *fanout, before []serverSample, clients int, churnFor time.Duration, name string) error {
	f := &o.Fleet
	if !sleepCtx(ctx, 2*time.Second) { // let connection set-up settle
		return ctx.Err()
	}
	idle := newCPUMeter(c)
	if !sleepCtx(ctx, fleetIdleWindow) {
		return ctx.Err()
	}
	idlePct := idle.meanPct()
	idle.report(name + " idle")
	after, err := sampleServers(ctx, c)
	if err != nil {
		return err
	}
	if name == "fleet" { // the watch phase starts while the fleet's sessions still close
		logServerGrowth(before, after)
	}
	if o.ProfileDir != "" { // where a connected client's bytes are
		path := filepath.Join(o.ProfileDir, name+"_idle_heap.pprof")
		if err := fetchPprof(ctx, leader, "heap", path); err != nil {
			logf("heap profile: %v", err)
		} else {
			logf("leader heap with the fleet connected: %s", path)
		}
	}

	reads0 := sumReads(after)
	logf("%s: churn of %.0f changes/s for %v", name, f.Rate, churnFor)
	wait := profilePhase(ctx, o.ProfileDir, leader, churnFor, name+"_churn")
	busy := newCPUMeter(c)
	changes, err := churn(ctx, leader, fo, f.Services, f.Rate, churnFor, churnRand(f))
	busyPct := busy.meanPct()
	busy.report(name + " churn")
	wait()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(fleetGrace)
	for !fo.complete() && time.Now().Before(deadline) && sleepCtx(ctx, 100*time.Millisecond) {
	}
	end, err := sampleServers(ctx, c)
	if err != nil {
		return err
	}
	reads := sumReads(end) - reads0
	lat, deliveries, missing := fo.outcome()
	logf("%s: %d changes, %d deliveries, %d missing, %.0f read RPCs; fan-out p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms",
		name, changes, deliveries, missing, reads, msPct(lat, 0.5), msPct(lat, 0.9), msPct(lat, 0.99), msPct(lat, 1))
	fo.worst(5)
	fo.perServer()
	if changes == 0 {
		return fmt.Errorf("%s: no change made", name)
	}
	if name == "watch" {
		result("fleet_reads_per_change_index_watch=%.1f clients=%d", reads/float64(changes), clients)
		if missing > 0 {
			logf("watch: %d (change, session) pairs never delivered", missing)
		}
		return nil
	}
	result("fleet_fanout_p99_ms=%.1f clients=%d changes=%d deliveries=%d", msPct(lat, 0.99), clients, changes, deliveries)
	result("fleet_reads_per_change=%.2f clients=%d", reads/float64(changes), clients)
	result("fleet_server_cpu_pct=%.1f idle_cpu_pct=%.1f clients=%d", busyPct, idlePct, clients)
	result("fleet_server_rss_kb_per_client=%.1f", rssPerClient(before, after))
	if missing > 0 {
		return fmt.Errorf("fleet: %d (change, session) pairs not delivered within %v after the churn", missing, fleetGrace)
	}
	return nil
}

// churnRand is the churn's own random source (the same draws at every run).
func churnRand(f *fleetOptions) *rand.Rand { return rand.New(rand.NewSource(int64(f.Services))) }

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// meanPct is the mean CPU of the servers since the meter started, in
// percent of one core.
func (m *cpuMeter) meanPct() float64 {
	wall := time.Since(m.start).Seconds()
	if wall <= 0 || len(m.c.agents) == 0 {
		return 0
	}
	var sum float64
	for i, a := range m.c.agents {
		sum += (procCPU(a.cmd.Process.Pid) - m.procs[i]).Seconds() / wall
	}
	return 100 * sum / float64(len(m.c.agents))
}

// serverSample is what one server reports at one moment.
type serverSample struct {
	name       string
	rssKB      float64
	sessions   float64 // cairn_rpc_sessions
	goroutines float64 // go_goroutines
	heapKB     float64 // go_memstats_heap_inuse_bytes
	stackKB    float64 // go_memstats_stack_inuse_bytes
	reads      float64 // read RPCs served so far
}

// readMethods are the RPC methods that read state (structs/methods.go):
// what a client agent's cache would issue to stay fresh.
var readMethods = []string{
	"Catalog.ListNodes", "Catalog.ListServices", "Catalog.ServiceNodes", "Catalog.NodeServices",
	"Health.ServiceNodes", "Health.NodeChecks", "Health.ServiceChecks", "Health.ChecksInState",
	"KVS.Get", "KVS.List", "KVS.ListKeys",
}

func sampleServers(ctx context.Context, c *cluster) ([]serverSample, error) {
	out := make([]serverSample, 0, len(c.agents))
	for _, a := range c.agents {
		m, err := scrape(ctx, a)
		if err != nil {
			return nil, err
		}
		s := serverSample{name: a.name, rssKB: procRSSKB(a.cmd.Process.Pid),
			sessions: m["cairn_rpc_sessions"], goroutines: m["go_goroutines"],
			heapKB: m["go_memstats_heap_inuse_bytes"] / 1024, stackKB: m["go_memstats_stack_inuse_bytes"] / 1024}
		for _, meth := range readMethods {
			s.reads += m[`cairn_rpc_method_requests_total{method="`+meth+`"}`]
		}
		out = append(out, s)
	}
	return out, nil
}

func sumReads(s []serverSample) float64 {
	var n float64
	for _, x := range s {
		n += x.reads
	}
	return n
}

// rssPerClient is the servers' RSS growth per session gained.
func rssPerClient(before, after []serverSample) float64 {
	var rss, sessions float64
	for i := range after {
		rss += after[i].rssKB - before[i].rssKB
		sessions += after[i].sessions - before[i].sessions
	}
	if sessions <= 0 {
		return 0
	}
	return rss / sessions
}

func logServerGrowth(before, after []serverSample) {
	for i := range after {
		ds := after[i].sessions - before[i].sessions
		if ds <= 0 {
			continue
		}
		b, a := before[i], after[i]
		logf("%s: +%.0f sessions, RSS %.0f -> %.0f KiB (%.1f KiB/session: heap in use %.1f, stacks %.1f), goroutines %.0f -> %.0f (%.2f/session)",
			a.name, ds, b.rssKB, a.rssKB, (a.rssKB-b.rssKB)/ds, (a.heapKB-b.heapKB)/ds, (a.stackKB-b.stackKB)/ds,
			b.goroutines, a.goroutines, (a.goroutines-b.goroutines)/ds)
	}
}

// procRSSKB is VmRSS of pid in KiB (0 if unreadable).
func procRSSKB(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, _ := strconv.ParseFloat(f[0], 64)
				return v
			}
		}
	}
	return 0
}

// scrape reads a's Prometheus metrics into series -> value (the series
// as written, labels included; no HELP or TYPE lines).
func scrape(ctx context.Context, a *agentProc) (map[string]float64, error) {
	url := "http://" + a.httpAddr() + "/v1/agent/metrics?format=prometheus"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// fetchPprof saves a's /debug/pprof/<what> (CAIRN_PPROF=1) to path.
func fetchPprof(ctx context.Context, a *agentProc, what, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	url := "http://" + a.httpAddr() + "/debug/pprof/" + what
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
