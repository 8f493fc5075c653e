package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/cairnd/cairn/cluster/testutil"
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
func startClient(c *cluster, bin string) (*agentProc, error) {
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	a := &agentProc{name: "c1", dns: ports[0], httpPort: ports[1], server: ports[2], serfLAN: ports[3], serfW: ports[4], done: make(chan struct{})}
	a.dataDir = filepath.Join(c.dir, a.name)
	a.logPath = filepath.Join(c.dir, a.name+".log")
	args := []string{"agent", "--data-dir", a.dataDir, "--node", a.name, "--bind", "127.0.0.1", "--client", "127.0.0.1",
		"--dns-port", strconv.Itoa(a.dns), "--http-port", strconv.Itoa(a.httpPort),
		"--server-port", strconv.Itoa(a.server), "--serf-lan-port", strconv.Itoa(a.serfLAN),
		"--serf-wan-port", strconv.Itoa(a.serfW), "--log-level", "warn",
		"--retry-join", "127.0.0.1:" + strconv.Itoa(c.agents[0].serfLAN),
	}
	lf, err := os.Create(a.logPath)
	if err != nil {
		return nil, err
	}
	a.cmd = exec.Command(bin, args...)
	a.cmd.Env = append(os.Environ(), "CAIRN_FAST_GOSSIP=1")
	a.cmd.Stdout, a.cmd.Stderr = lf, lf
	a.cmd.SysProcAttr = testutil.ChildProcAttr()
	if err := a.cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", a.name, err)
	}
	go func() { a.cmd.Wait(); lf.Close(); close(a.done) }()
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
	cl, err := startClient(c, o.Bin)
	if err != nil {
		return err
	}
	dnsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cl.dns))
	probe, err := newDNSProbe(dnsAddr)
	if err != nil {
		return err
	}
	defer probe.Close()

	// The client is ready once it answers for the servers' own service.
	ready := time.Now().Add(clientReadyTimeout)
	for {
		if n, _, err := probe.aRecords("consul.service.consul"); err == nil && n > 0 {
			break
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

	// Cold misses: distinct names, registered and replicated first.
	logf("registering %d services for the miss phase", clientMisses)
	for i := range clientMisses {
		if err := registerNode(ctx, servers[0], fmt.Sprintf("miss-n%d", i), fmt.Sprintf("10.1.%d.%d", i/200, i%200+1), fmt.Sprintf("miss-%d", i), "passing"); err != nil {
			return err
		}
	}
	if err := visibleEverywhere(ctx, servers, fmt.Sprintf("miss-%d", clientMisses-1)); err != nil {
		return err
	}
	miss := make([]time.Duration, 0, clientMisses)
	for i := range clientMisses {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		name := fmt.Sprintf("miss-%d.service.consul", i)
		t0 := time.Now()
		n, rcode, err := probe.aRecords(name)
		d := time.Since(t0)
		if err != nil {
			return fmt.Errorf("miss %s: %w", name, err)
		}
		if n != 1 {
			return fmt.Errorf("miss %s: %d A records (rcode %s), want 1", name, n, dns.RcodeToString[rcode])
		}
		miss = append(miss, d)
	}
	slices.Sort(miss)
	result("miss_p99_ms=%.3f miss_p50_ms=%.3f misses=%d", msPct(miss, 0.99), msPct(miss, 0.5), len(miss))

	// Freshness.
	fresh := make([]time.Duration, 0, freshnessTrials)
	for i := range freshnessTrials {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		svc := fmt.Sprintf("fresh-%d", i)
		node := fmt.Sprintf("fresh-n%d", i)
		addr := fmt.Sprintf("10.2.%d.%d", i/200, i%200+1)
		name := svc + ".service.consul"
		if err := registerNode(ctx, servers[i%len(servers)], node, addr, svc, "passing"); err != nil {
			return err
		}
		if err := visibleEverywhere(ctx, servers, svc); err != nil {
			return err
		}
		deadline := time.Now().Add(freshnessTrialMax)
		for {
			n, _, err := probe.aRecords(name)
			if err == nil && n == 1 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("freshness trial %d: client never answered %s", i, name)
			}
			time.Sleep(freshnessPoll)
		}
		t0 := time.Now()
		if err := registerNode(ctx, servers[i%len(servers)], node, addr, svc, "critical"); err != nil {
			return err
		}
		deadline = t0.Add(freshnessTrialMax)
		for {
			n, _, err := probe.aRecords(name)
			if err == nil && n == 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("freshness trial %d: client still answers %s after %v", i, name, freshnessTrialMax)
			}
			time.Sleep(freshnessPoll)
		}
		fresh = append(fresh, time.Since(t0))
	}
	slices.Sort(fresh)
	result("freshness_p99_ms=%.3f freshness_p50_ms=%.3f trials=%d", msPct(fresh, 0.99), msPct(fresh, 0.5), len(fresh))
	return nil
}
