package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/miekg/dns"
)

// The client benchmark measures what a client agent's cache adds on top of
// the server tier: 3 servers and 1 client agent on loopback
// (CAIRN_FAST_GOSSIP=1), DNS asked of the client with a miekg/dns client.
//
//	bench miss_p99_ms=<x> miss_p50_ms=<y> misses=<n>
//	    cold lookups of n distinct registered services, one at a time:
//	    client → server → client, each name asked exactly once.
//	bench freshness_p99_ms=<x> freshness_p50_ms=<y> trials=100
//	    per trial: a service is registered passing and asked through the
//	    client until it answers (its entry is then cached and watched);
//	    then its check is set critical with /v1/catalog/register on a
//	    server, and the client is polled every 1 ms until it no longer
//	    returns the instance. The delay counts from just before the PUT.
func init() {
	register("client", "client agent cache: cold-miss latency (client → server → client) and push freshness after a check turns critical", runClient)
}

const (
	clientMisses       = 1000
	freshnessTrials    = 100
	freshnessPoll      = time.Millisecond
	freshnessTrialMax  = 5 * time.Second
	clientDNSTimeout   = time.Second
	clientReadyTimeout = 60 * time.Second
)

// startClient starts one client agent joined to c's first server.
func startClient(ctx context.Context, c *cluster, bin string) (*agentProc, error) {
	a, err := startAgent(ctx, c.dir, bin, "c1", append(os.Environ(), "CAIRN_FAST_GOSSIP=1"),
		"--log-level", "warn", "--encrypt", c.key, "--retry-join", "127.0.0.1:"+strconv.Itoa(c.agents[0].serfLAN))
	if err != nil {
		return nil, err
	}
	// Stopped and its data removed with the cluster.
	c.agents = append(c.agents, a)
	return a, nil
}

// dnsProbe asks one server over a single UDP socket.
type dnsProbe struct {
	cl   *dns.Client
	conn *dns.Conn
	id   uint16
}

func newDNSProbe(addr string) (*dnsProbe, error) {
	cl := &dns.Client{Net: "udp", Timeout: clientDNSTimeout}
	conn, err := cl.Dial(addr)
	if err != nil {
		return nil, err
	}
	return &dnsProbe{cl: cl, conn: conn}, nil
}

// aRecords returns the A answers to name and the rcode.
func (p *dnsProbe) aRecords(name string) (int, int, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	p.id++
	m.Id = p.id
	r, _, err := p.cl.ExchangeWithConn(m, p.conn)
	if err != nil {
		return 0, 0, err
	}
	if r.Id != m.Id {
		return 0, 0, fmt.Errorf("%s: reply id %d, want %d", name, r.Id, m.Id)
	}
	n := 0
	for _, rr := range r.Answer {
		if _, ok := rr.(*dns.A); ok {
			n++
		}
	}
	return n, r.Rcode, nil
}

func (p *dnsProbe) Close() { p.conn.Close() }

func registerNode(ctx context.Context, srv *agentProc, node, addr, svc, status string) error {
	body := fmt.Sprintf(`{"Node":%q,"Address":%q,"Service":{"Service":%q,"Port":80},"Check":{"Node":%q,"CheckID":"svc:%s","Name":"svc","Status":%q,"ServiceID":%q}}`,
		node, addr, svc, node, svc, status, svc)
	return rpcBenchPut(ctx, "http://"+srv.httpAddr()+"/v1/catalog/register", body)
}

// visibleEverywhere waits until every server's state store (stale read)
// lists svc with a passing instance.
func visibleEverywhere(ctx context.Context, servers []*agentProc, svc string) error {
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range servers {
		for {
			var out []struct{ ServiceName string }
			err := getJSON(ctx, "http://"+s.httpAddr()+"/v1/health/service/"+svc+"?stale&passing", &out)
			if err == nil && len(out) > 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not visible on %s: %v", svc, s.name, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

func msPct(lat []time.Duration, q float64) float64 {
	return phase{lat: lat}.pct(q)
}

func runClient(ctx context.Context, o *Options) error {
	c, err := startServers(ctx, o.Bin, 3, false, o.KeepLogs)
	if err != nil {
		return err
	}
	defer c.Close()
	servers := slices.Clone(c.agents)
	cl, err := startClient(ctx, c, o.Bin)
	if err != nil {
		return err
	}
	probe, err := newDNSProbe(net.JoinHostPort("127.0.0.1", strconv.Itoa(cl.dns)))
	if err != nil {
		return err
	}
	defer probe.Close()
	if err := waitClientAnswers(ctx, c, cl, probe); err != nil {
		return err
	}

	miss, err := coldMisses(ctx, servers, probe)
	if err != nil {
		return err
	}
	result("miss_p99_ms=%.3f miss_p50_ms=%.3f misses=%d", msPct(miss, 0.99), msPct(miss, 0.5), len(miss))

	fresh := make([]time.Duration, 0, freshnessTrials)
	for i := range freshnessTrials {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d, err := freshnessTrial(ctx, i, servers, probe)
		if err != nil {
			return err
		}
		fresh = append(fresh, d)
	}
	slices.Sort(fresh)
	result("freshness_p99_ms=%.3f freshness_p50_ms=%.3f trials=%d", msPct(fresh, 0.99), msPct(fresh, 0.5), len(fresh))
	return nil
}

// waitClientAnswers waits until the client answers for the servers' own
// service: it has joined and reaches a server.
func waitClientAnswers(ctx context.Context, c *cluster, cl *agentProc, probe *dnsProbe) error {
	ready := time.Now().Add(clientReadyTimeout)
	for {
		if n, _, err := probe.aRecords("consul.service.consul"); err == nil && n > 0 {
			return nil
		}
		select {
		case <-cl.done:
			c.dumpLogs()
			return errors.New("client agent exited")
		default:
		}
		if time.Now().After(ready) || ctx.Err() != nil {
			c.dumpLogs()
			return errors.New("client agent does not answer consul.service.consul")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// coldMisses registers clientMisses distinct services, waits until every
// server has them, then asks the client for each exactly once and returns
// the sorted latencies.
func coldMisses(ctx context.Context, servers []*agentProc, probe *dnsProbe) ([]time.Duration, error) {
	logf("registering %d services for the miss phase", clientMisses)
	for i := range clientMisses {
		if err := registerNode(ctx, servers[0], fmt.Sprintf("miss-n%d", i), fmt.Sprintf("10.1.%d.%d", i/200, i%200+1), fmt.Sprintf("miss-%d", i), "passing"); err != nil {
			return nil, err
		}
	}
	if err := visibleEverywhere(ctx, servers, fmt.Sprintf("miss-%d", clientMisses-1)); err != nil {
		return nil, err
	}
	miss := make([]time.Duration, 0, clientMisses)
	for i := range clientMisses {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		name := fmt.Sprintf("miss-%d.service.consul", i)
		t0 := time.Now()
		n, rcode, err := probe.aRecords(name)
		d := time.Since(t0)
		if err != nil {
			return nil, fmt.Errorf("miss %s: %w", name, err)
		}
		if n != 1 {
			return nil, fmt.Errorf("miss %s: %d A records (rcode %s), want 1", name, n, dns.RcodeToString[rcode])
		}
		miss = append(miss, d)
	}
	slices.Sort(miss)
	return miss, nil
}

// freshnessTrial registers service i passing, waits until the client
// answers it (cached and watched), sets its check critical and returns how
// long the client kept answering, counted from just before the PUT.
func freshnessTrial(ctx context.Context, i int, servers []*agentProc, probe *dnsProbe) (time.Duration, error) {
	svc := fmt.Sprintf("fresh-%d", i)
	node := fmt.Sprintf("fresh-n%d", i)
	addr := fmt.Sprintf("10.2.%d.%d", i/200, i%200+1)
	name := svc + ".service.consul"
	srv := servers[i%len(servers)]
	if err := registerNode(ctx, srv, node, addr, svc, "passing"); err != nil {
		return 0, err
	}
	if err := visibleEverywhere(ctx, servers, svc); err != nil {
		return 0, err
	}
	if !pollAnswers(probe, name, 1, time.Now().Add(freshnessTrialMax)) {
		return 0, fmt.Errorf("freshness trial %d: client never answered %s", i, name)
	}
	t0 := time.Now()
	if err := registerNode(ctx, srv, node, addr, svc, "critical"); err != nil {
		return 0, err
	}
	if !pollAnswers(probe, name, 0, t0.Add(freshnessTrialMax)) {
		return 0, fmt.Errorf("freshness trial %d: client still answers %s after %v", i, name, freshnessTrialMax)
	}
	return time.Since(t0), nil
}

// pollAnswers asks for name every freshnessPoll until it gets want A
// records, and reports whether it did before deadline.
func pollAnswers(probe *dnsProbe, name string, want int, deadline time.Time) bool {
	for {
		n, _, err := probe.aRecords(name)
		if err == nil && n == want {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(freshnessPoll)
	}
}
