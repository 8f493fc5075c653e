package main

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The catalog phase of the fleet benchmark: does a big catalog slow a
// client agent's DNS? Instance i is service cat-<i/10> on node
// cn-<i mod (instances/10)>, so every service has 10 instances on 10
// nodes, every node hosts 10 instances, and the 100-instance base catalog
// is exactly the first 100 instances of the big one. The query is
// cat-0.service.consul (10 instances) in both.

const (
	catalogBase        = 100
	catalogWriters     = 64
	catalogQueryRounds = 11
	catalogRoundSize   = 2000
	catalogQuery       = "cat-0.service.consul"
	catalogPerService  = 10
	catalogAnswerWait  = 30 * time.Second
	// catalogUDPAnswers: a UDP answer carries udp_answer_limit (Consul's
	// default 3) of the service's 10 instances, shuffled.
	catalogUDPAnswers = 3
)

func runCatalog(ctx context.Context, o *Options) error {
	total := o.Fleet.CatalogInstances
	c, err := startServers(ctx, o.Bin, 3, false, o.KeepLogs, "--log-level", "warn")
	if err != nil {
		return err
	}
	defer c.Close()
	servers := slices.Clone(c.agents)
	leader, err := c.leader(ctx)
	if err != nil {
		return err
	}
	cl, err := startClient(ctx, c, o.Bin)
	if err != nil {
		return err
	}
	probe, err := newDNSProbe(net.JoinHostPort("127.0.0.1", strconv.Itoa(cl.dns)))
	if err != nil {
		return err
	}
	defer probe.Close()

	nodes := total / catalogPerService
	if err := registerCatalog(ctx, leader, 0, catalogBase, nodes); err != nil {
		return err
	}
	if err := visibleEverywhere(ctx, servers, fmt.Sprintf("cat-%d", catalogBase/catalogPerService-1)); err != nil {
		return err
	}
	waitQuiet(ctx, c)
	base, err := catalogDNSP99(ctx, probe)
	if err != nil {
		return fmt.Errorf("base catalog: %w", err)
	}
	logf("catalog: base (%d instances) DNS p99 %.0fus; registering %d more instances", catalogBase, base, total-catalogBase)
	t0 := time.Now()
	if err := registerCatalog(ctx, leader, catalogBase, total, nodes); err != nil {
		return err
	}
	logf("catalog: registered in %v (%.0f/s)", time.Since(t0).Round(time.Second), float64(total-catalogBase)/time.Since(t0).Seconds())
	if err := visibleEverywhereWithin(ctx, servers, fmt.Sprintf("cat-%d", total/catalogPerService-1), 5*time.Minute); err != nil {
		return err
	}
	waitQuiet(ctx, c)
	big, err := catalogDNSP99(ctx, probe)
	if err != nil {
		return fmt.Errorf("%d-instance catalog: %w", total, err)
	}
	logf("catalog: %d instances: DNS p99 %.0fus", total, big)
	result("catalog_100k_dns_p99_us=%.0f base_p99_us=%.0f", big, base)
	return nil
}

// Quiet: before each DNS measurement the agents must have settled after
// the registrations (followers applying, a raft snapshot of 100,000
// entries), or the query measures the machine's contention, not the
// catalog's size. Bounded: after quietMaxWait it measures anyway.
const (
	quietPct     = 10.0 // % of a core, every agent
	quietWindow  = time.Second
	quietMaxWait = 90 * time.Second
)

// waitQuiet waits until every agent of c used under quietPct of a core
// over one quietWindow, at most quietMaxWait.
func waitQuiet(ctx context.Context, c *cluster) {
	deadline := time.Now().Add(quietMaxWait)
	for {
		m := newCPUMeter(c)
		if !sleepCtx(ctx, quietWindow) {
			return
		}
		busiest := 0.0
		for i, a := range c.agents {
			busiest = max(busiest, 100*(procCPU(a.cmd.Process.Pid)-m.procs[i]).Seconds()/time.Since(m.start).Seconds())
		}
		if busiest < quietPct {
			return
		}
		if time.Now().After(deadline) {
			logf("catalog: agents still busy (%.0f%% of a core) after %v; measuring anyway", busiest, quietMaxWait)
			return
		}
	}
}

// registerCatalog registers instances [from, to), catalogWriters at a time.
func registerCatalog(ctx context.Context, leader *agentProc, from, to, nodes int) error {
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	errs := make(chan error, catalogWriters)
	var done atomic.Int64
	for range catalogWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= to || ctx.Err() != nil {
					return
				}
				svc := i / catalogPerService
				node := i % nodes
				body := fmt.Sprintf(`{"Node":"cn-%d","Address":"10.%d.%d.%d","Service":{"ID":"cat-%d","Service":"cat-%d","Port":80}}`,
					node, 100+node/65536, node/256%256, node%256, svc, svc)
				if err := rpcBenchPut(ctx, "http://"+leader.httpAddr()+"/v1/catalog/register", body); err != nil {
					errs <- err
					return
				}
				if n := done.Add(1); n%10000 == 0 {
					logf("catalog: %d instances registered", n)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// visibleEverywhereWithin is visibleEverywhere with its own time limit
// (a big catalog takes the followers a while to apply).
func visibleEverywhereWithin(ctx context.Context, servers []*agentProc, svc string, d time.Duration) error {
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = visibleEverywhere(ctx, servers, svc); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return err
}

// catalogDNSP99 waits until the client answers catalogQuery with its 10
// instances, then asks it catalogQueryRounds rounds of catalogRoundSize
// times and returns the median of the rounds' p99, in microseconds (the
// median of rounds keeps one noisy second of a shared machine out).
func catalogDNSP99(ctx context.Context, probe *dnsProbe) (float64, error) {
	deadline := time.Now().Add(catalogAnswerWait)
	for {
		n, rcode, err := probe.aRecords(catalogQuery)
		if err == nil && n == catalogUDPAnswers {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, fmt.Errorf("client does not answer %s with %d A records (last: %d, rcode %d, error %v)", catalogQuery, catalogUDPAnswers, n, rcode, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p99s := make([]float64, 0, catalogQueryRounds)
	for range catalogQueryRounds {
		lat := make([]time.Duration, 0, catalogRoundSize)
		for range catalogRoundSize {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			t0 := time.Now()
			n, _, err := probe.aRecords(catalogQuery)
			d := time.Since(t0)
			if err != nil {
				return 0, err
			}
			if n != catalogUDPAnswers {
				return 0, fmt.Errorf("%s: %d A records, want %d", catalogQuery, n, catalogUDPAnswers)
			}
			lat = append(lat, d)
		}
		slices.Sort(lat)
		p99s = append(p99s, msPct(lat, 0.99)*1000)
	}
	slices.Sort(p99s)
	return p99s[len(p99s)/2], nil
}
