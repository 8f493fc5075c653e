package agent_test

// End-to-end proof of the client cache with real processes: 3 servers + 1
// client on loopback. 1,000 concurrent identical cold DNS questions make
// one server request; a check turning critical on the server tier leaves
// the client's answers within 1 s; with every server down cached names are
// still answered and uncached ones fail fast with SERVFAIL.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/testutil"
	"github.com/miekg/dns"
)

// cacheHTTP sends body, JSON-encoded unless nil, to url and returns the
// answer; a status other than 200 is an error.
func cacheHTTP(method, url string, body any) ([]byte, error) {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, b, _, err := e2eDo(ctx, http.DefaultClient, method, url, data)
	if err != nil {
		return b, err
	}
	if st != http.StatusOK {
		return b, fmt.Errorf("%s %s: %d %s", method, url, st, b)
	}
	return b, nil
}

// cacheMetric sums the samples of metric name whose line contains every
// one of labels (e.g. `method="Health.ServiceNodes"`); 0 if none yet.
func cacheMetric(t *testing.T, p *agenttest.Proc, name string, labels ...string) float64 {
	t.Helper()
	v, err := e2eMetric(http.DefaultClient, p, name, labels...)
	if err != nil && !strings.Contains(err.Error(), "not exposed") {
		t.Fatal(err)
	}
	return v
}

// register puts an external instance of service on node with one check.
func register(t *testing.T, srv *agenttest.Proc, node, addr, service, status string) {
	t.Helper()
	_, err := cacheHTTP(http.MethodPut, "http://"+srv.HTTPAddr()+"/v1/catalog/register", map[string]any{
		"Node": node, "Address": addr,
		"Service": map[string]any{"ID": service, "Service": service, "Port": 80},
		"Check":   map[string]any{"CheckID": "chk-" + service, "Name": service, "Status": status, "ServiceID": service},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func dnsA(addr, name string, timeout time.Duration) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: timeout}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, _, err := c.Exchange(m, addr)
	return r, err
}

func answerAddrs(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

func hasAddr(r *dns.Msg, addr string) bool {
	for _, a := range answerAddrs(r) {
		if a == addr {
			return true
		}
	}
	return false
}

func TestClientCacheE2E(t *testing.T) {
	x := startCacheCluster(t)
	// In order: the last step stops servers.
	runSteps(t, x, []step[*cacheCluster]{
		{"1000 identical cold misses make one server request", testCacheColdMissesCoalesce},
		{"critical check leaves client answers within 1s", testCacheCriticalCheckLeaves},
		{"servers down: cached served, uncached SERVFAIL, then fresh", testCacheServersDown},
	})
}

// cacheCluster is TestClientCacheE2E's: 3 servers and one client agent,
// with web (3 instances) and db registered and answered by the client.
type cacheCluster struct {
	servers []*agenttest.Proc
	client  *agenttest.Proc
	dnsAddr string // the client's
}

// startCacheCluster starts the cluster and waits until the client answers
// for db; under -short it skips the test.
func startCacheCluster(t *testing.T) *cacheCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts 4 agent processes")
	}
	bin := agenttest.Binary(t)
	t.Setenv("CAIRN_FAST_GOSSIP", "1")
	servers, join := startServerAgents(t, bin, "cs", 3)
	client := agenttest.StartAgent(t, bin, "cc1", "--retry-join", join)
	testutil.Eventually(t, 60*time.Second, "catalog writes accepted", func() error {
		_, err := cacheHTTP(http.MethodPut, "http://"+servers[0].HTTPAddr()+"/v1/catalog/register",
			map[string]any{"Node": "probe", "Address": "10.9.9.9"})
		return err
	})
	for i := 1; i <= 3; i++ {
		register(t, servers[0], "web"+strconv.Itoa(i), "10.1.0."+strconv.Itoa(i), "web", "passing")
	}
	register(t, servers[0], "db1", "10.2.0.1", "db", "passing")
	dnsAddr := client.DNSAddr()
	testutil.Eventually(t, 30*time.Second, "client DNS answers db", func() error {
		r, err := dnsA(dnsAddr, "db.service.consul.", time.Second)
		if err != nil {
			return err
		}
		if len(answerAddrs(r)) != 1 {
			return fmt.Errorf("db answer %v", r)
		}
		return nil
	})
	return &cacheCluster{servers: servers, client: client, dnsAddr: dnsAddr}
}

func testCacheColdMissesCoalesce(t *testing.T, x *cacheCluster) {
	client, dnsAddr := x.client, x.dnsAddr
	// Only this key's reads count: anti-entropy uses other methods and may
	// run at any moment.
	const reads = `method="Health.ServiceNodes"`
	// Wait until the just-started cluster has settled (no such request
	// for a while, e.g. startup misses of the probe above) so the burst
	// is alone.
	before := cacheMetric(t, client, "cairn_forwarder_requests_total", reads)
	quiet := time.Now()
	testutil.Eventually(t, 20*time.Second, "no Health.ServiceNodes request for 1.5s", func() error {
		if n := cacheMetric(t, client, "cairn_forwarder_requests_total", reads); n != before {
			before, quiet = n, time.Now()
		}
		if d := time.Since(quiet); d < 1500*time.Millisecond {
			return fmt.Errorf("last request %v ago", d.Round(time.Millisecond))
		}
		return nil
	})
	missBefore := cacheMetric(t, client, "cairn_cache_misses_total")
	var wg sync.WaitGroup
	var bad atomic.Int64
	var firstErr atomic.Value
	start := make(chan struct{})
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := dnsA(dnsAddr, "web.service.consul.", 5*time.Second)
			if err == nil && len(answerAddrs(r)) != 3 {
				err = fmt.Errorf("answer %v", answerAddrs(r))
			}
			if err != nil {
				bad.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Fatalf("%d of 1000 queries failed, first: %v", n, firstErr.Load())
	}
	fwd := cacheMetric(t, client, "cairn_forwarder_requests_total", reads) - before
	miss := cacheMetric(t, client, "cairn_cache_misses_total") - missBefore
	t.Logf("forwarder requests %v, cache misses %v, coalesced %v", fwd, miss, cacheMetric(t, client, "cairn_cache_coalesced_total"))
	if miss != 1 || fwd != 1 {
		t.Fatalf("1000 identical cold queries: %v forwarder requests, %v misses; want 1", fwd, miss)
	}
}

func testCacheCriticalCheckLeaves(t *testing.T, x *cacheCluster) {
	servers, dnsAddr := x.servers, x.dnsAddr
	for _, status := range []string{"critical", "passing"} {
		register(t, servers[1], "web2", "10.1.0.2", "web", status)
		changed := time.Now()
		testutil.Eventually(t, time.Second, "check "+status+" reflected by the client", func() error {
			r, err := dnsA(dnsAddr, "web.service.consul.", time.Second)
			if err == nil && hasAddr(r, "10.1.0.2") != (status == "passing") {
				err = fmt.Errorf("answer %v", answerAddrs(r))
			}
			return err
		})
		t.Logf("check %s reflected in %s", status, time.Since(changed))
	}
}

func testCacheServersDown(t *testing.T, x *cacheCluster) {
	servers, client, dnsAddr := x.servers, x.client, x.dnsAddr
	for _, s := range servers {
		s.Kill()
	}
	testutil.Eventually(t, 10*time.Second, "the client's server connection gone", func() error {
		if g := cacheMetric(t, client, "cairn_forwarder_connections"); g != 0 {
			return fmt.Errorf("cairn_forwarder_connections = %v", g)
		}
		return nil
	})
	for range 10 {
		r, err := dnsA(dnsAddr, "web.service.consul.", 2*time.Second)
		if err != nil || len(answerAddrs(r)) != 3 {
			t.Fatalf("cached name during outage: %v %v", err, r)
		}
	}
	start := time.Now()
	r, err := dnsA(dnsAddr, "nosuch.service.consul.", 5*time.Second)
	if err != nil || r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("uncached name during outage: %v %v", err, r)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("uncached SERVFAIL took %s", d)
	}
	if r, err := dnsA(dnsAddr, "web.service.consul.", time.Second); err != nil || len(answerAddrs(r)) != 3 {
		t.Fatalf("resolver blocked after a failing miss: %v %v", err, r)
	}
	// Once the client has seen its servers fail, cached answers are
	// counted as served stale.
	testutil.Eventually(t, 10*time.Second, "stale hits counted", func() error {
		if r, err := dnsA(dnsAddr, "web.service.consul.", time.Second); err != nil || len(answerAddrs(r)) != 3 {
			t.Fatalf("cached name during outage: %v %v", err, r)
		}
		if cacheMetric(t, client, "cairn_cache_stale_hits_total") == 0 {
			return errors.New("no stale hit yet")
		}
		return nil
	})
	for _, s := range servers {
		s.Restart()
	}
	testutil.Eventually(t, 60*time.Second, "servers accept writes again", func() error {
		_, err := cacheHTTP(http.MethodPut, "http://"+servers[0].HTTPAddr()+"/v1/catalog/register",
			map[string]any{"Node": "probe", "Address": "10.9.9.8"})
		return err
	})
	register(t, servers[0], "web4", "10.1.0.4", "web", "passing")
	testutil.Eventually(t, 30*time.Second, "fresh answers after servers return", func() error {
		r, err := dnsA(dnsAddr, "web.service.consul.", time.Second)
		if err != nil {
			return err
		}
		if !hasAddr(r, "10.1.0.4") {
			return fmt.Errorf("answer %v", answerAddrs(r))
		}
		return nil
	})
}
