package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/forwarder"
	"github.com/prometheus/client_golang/prometheus"
)

// The rpc benchmark measures the client→server hop a client agent makes on
// a cache miss: an in-process forwarder (the client agent's, same package
// and settings) connected to a 3-server loopback cluster, calling
// Health.ServiceNodes.
//
//	bench rpc_read_p50_us=<n> p99_us=<n>    5,000 sequential round trips
//	bench rpc_reads_per_s=<n>               256 concurrent streams, --duration
//
// Reads use AllowStale (what DNS uses by default), so a read is exactly one
// round trip to the server the forwarder is connected to, never a second
// hop to the leader. The forwarder must hold exactly one connection
// throughout; the run fails otherwise.
func init() {
	register("rpc", "client→server Health.ServiceNodes over the forwarder's one connection: sequential latency, 256-stream throughput", runRPC)
}

const (
	rpcSequentialCalls = 5000
	rpcStreams         = 256
	rpcBenchService    = "bench-web"
	rpcBenchInstances  = 3
)

func runRPC(ctx context.Context, o *Options) error {
	c, err := startServers(ctx, o.Bin, 3, o.ProfileDir != "", o.KeepLogs)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := registerRPCBenchService(ctx, c.agents[0]); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	fwd, stop := startRPCForwarder(ctx, c, reg)
	defer stop()
	args := &structs.ServiceSpecificRequest{
		Datacenter:   "dc1",
		ServiceName:  rpcBenchService,
		QueryOptions: structs.QueryOptions{AllowStale: true},
	}
	call := func(ctx context.Context) error {
		var out structs.IndexedCheckServiceNodes
		if err := fwd.Call(ctx, structs.MethodHealthServiceNodes, args, &out, true); err != nil {
			return err
		}
		if len(out.Nodes) != rpcBenchInstances {
			return fmt.Errorf("got %d instances, want %d", len(out.Nodes), rpcBenchInstances)
		}
		return nil
	}
	if err := rpcWarmUp(ctx, call); err != nil {
		return err
	}
	logf("forwarder connected to %s", fwd.Server())

	if err := rpcSequentialReads(ctx, call); err != nil {
		return err
	}
	if err := rpcOneConnection(reg, "after sequential reads"); err != nil {
		return err
	}
	if err := rpcConcurrentReads(ctx, o, c, fwd.Server(), call); err != nil {
		return err
	}
	return rpcOneConnection(reg, "after concurrent reads")
}

// registerRPCBenchService registers a service with a few instances, as DNS
// would look up.
func registerRPCBenchService(ctx context.Context, srv *agentProc) error {
	for i := range rpcBenchInstances {
		body := fmt.Sprintf(`{"Node":"bench-node-%d","Address":"10.0.0.%d","Service":{"Service":%q,"Port":%d,"Tags":["v1"]}}`,
			i, i+1, rpcBenchService, 8080+i)
		if err := rpcBenchPut(ctx, "http://"+srv.httpAddr()+"/v1/catalog/register", body); err != nil {
			return err
		}
	}
	return nil
}

// startRPCForwarder runs a client agent's forwarder, metrics in reg, over
// c's servers; stop ends and closes it.
func startRPCForwarder(ctx context.Context, c *cluster, reg *prometheus.Registry) (fwd *forwarder.Forwarder, stop func()) {
	cfg := forwarder.DefaultConfig()
	// No rebalancing during the run: one connection, one server.
	cfg.RebalanceInterval = time.Hour
	fwd = forwarder.New(cfg, nil, reg)
	addrs := make([]string, 0, len(c.agents))
	for _, a := range c.agents {
		addrs = append(addrs, a.rpcAddr())
	}
	fwd.SetServers(addrs)
	runCtx, stopRun := context.WithCancel(ctx)
	runDone := make(chan struct{})
	go func() { defer close(runDone); fwd.Run(runCtx) }()
	return fwd, func() { stopRun(); <-runDone; fwd.Close() }
}

// rpcWarmUp waits until call succeeds (every server has the registrations,
// since stale reads are local, and the forwarder is connected), then makes
// 500 more calls.
func rpcWarmUp(ctx context.Context, call func(context.Context) error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := call(wctx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("warm-up: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The servers all replicated the catalog (whichever one we reach).
	time.Sleep(500 * time.Millisecond)
	for range 500 {
		if err := call(ctx); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	return nil
}

// rpcSequentialReads times rpcSequentialCalls round trips, one at a time.
func rpcSequentialReads(ctx context.Context, call func(context.Context) error) error {
	lat := make([]time.Duration, 0, rpcSequentialCalls)
	for range rpcSequentialCalls {
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		t0 := time.Now()
		err := call(octx)
		el := time.Since(t0)
		cancel()
		if err != nil {
			return fmt.Errorf("sequential read: %w", err)
		}
		lat = append(lat, el)
	}
	slices.Sort(lat)
	seq := phase{ops: len(lat), lat: lat}
	result("rpc_read_p50_us=%.0f p99_us=%.0f", seq.pct(0.50)*1000, seq.pct(0.99)*1000)
	return nil
}

// rpcConcurrentReads runs rpcStreams concurrent streams over the one
// connection for o.Duration, profiling the server at connected when asked.
func rpcConcurrentReads(ctx context.Context, o *Options, c *cluster, connected string, call func(context.Context) error) error {
	wait := func() {}
	if o.ProfileDir != "" {
		for _, a := range c.agents {
			if a.rpcAddr() == connected {
				wait = profilePhase(ctx, o.ProfileDir, a, o.Duration, "rpc_reads")
			}
		}
	}
	p := runLoad(ctx, rpcStreams, o.Duration, func(ctx context.Context, _, _ int) error { return call(ctx) })
	wait()
	if err := p.check("rpc concurrent reads"); err != nil {
		return err
	}
	result("rpc_reads_per_s=%.0f", p.opsPerSec())
	logf("concurrent: %d streams, %d reads in %v, p50=%.0fus p99=%.0fus", rpcStreams, p.ops, p.elapsed.Round(time.Millisecond), p.pct(0.5)*1000, p.pct(0.99)*1000)
	return nil
}

// rpcOneConnection checks the forwarder's connections gauge is 1 and that
// it never failed over.
func rpcOneConnection(reg *prometheus.Registry, when string) error {
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	vals := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			vals[mf.GetName()] += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	conns, failovers := vals["cairn_forwarder_connections"], vals["cairn_forwarder_failovers_total"]
	logf("%s: cairn_forwarder_connections=%v failovers=%v requests=%v", when, conns, failovers, vals["cairn_forwarder_requests_total"])
	if conns != 1 || failovers != 0 {
		return fmt.Errorf("%s: forwarder connections=%v failovers=%v, want 1 and 0", when, conns, failovers)
	}
	return nil
}

func rpcBenchPut(ctx context.Context, url, body string) error {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader([]byte(body)))
		if err != nil {
			return err
		}
		resp, err := httpc.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("PUT %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
		}
		if attempt >= 20 || ctx.Err() != nil {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}
