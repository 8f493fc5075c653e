package agent_test

// End-to-end proof of cross-datacenter reads: two datacenters of one
// server each, joined over serf WAN; a client agent of dc1 resolves a
// service that exists only in dc2, over HTTP (?dc=dc2) and DNS
// (<svc>.service.dc2.consul), and an unknown datacenter is a clear error.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/testutil"
	"github.com/miekg/dns"
)

func dnsQuery(addr, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: "udp", Timeout: 3 * time.Second}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

func TestDatacenterForwardingE2E(t *testing.T) {
	x := startDCCluster(t)
	runSteps(t, x, []step[*dcCluster]{
		{"HTTP", testDCForwardingHTTP},
		{"DNS", testDCForwardingDNS},
		{"PreparedQueryFailover", testDCQueryFailover},
	})
}

// dcCluster is TestDatacenterForwardingE2E's: one server in each of dc1
// and dc2, joined over the WAN, and a dc1 client; service payments is
// registered in dc2 only.
type dcCluster struct {
	hc   *http.Client
	base string // the dc1 client's HTTP API
	c1   *agenttest.Proc
}

// startDCCluster starts the two datacenters and registers payments in
// dc2; under -short it skips the test.
func startDCCluster(t *testing.T) *dcCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts 3 agent processes")
	}
	t.Setenv("CAIRN_FAST_GOSSIP", "1")
	bin := agenttest.Binary(t)
	hc := e2eClient()
	t.Cleanup(hc.CloseIdleConnections)

	s1 := startAgent(t, bin, "dc1-s1", "--server", "--bootstrap-expect", "1")
	wan1 := fmt.Sprintf("127.0.0.1:%d", s1.Ports.SerfWAN)
	s2 := startAgent(t, bin, "dc2-s1", "--server", "--bootstrap-expect", "1",
		"--datacenter", "dc2", "--retry-join-wan", wan1)
	c1 := startAgent(t, bin, "dc1-c1", "--retry-join", s1.SerfAddr())

	// Both datacenters elected their leader; the dc1 client sees dc2.
	for _, s := range []*agenttest.Proc{s1, s2} {
		testutil.Eventually(t, 30*time.Second, s.Name+" has a leader", func() error {
			b, _, err := e2eGet(hc, "http://"+s.HTTPAddr()+"/v1/status/leader", 2*time.Second)
			if err != nil {
				return err
			}
			if strings.Trim(strings.TrimSpace(string(b)), `"`) == "" {
				return fmt.Errorf("no leader yet")
			}
			return nil
		})
	}
	base := "http://" + c1.HTTPAddr()
	testutil.Eventually(t, 30*time.Second, "dc1 client lists dc2", func() error {
		b, _, err := e2eGet(hc, base+"/v1/catalog/datacenters", 2*time.Second)
		if err != nil {
			return err
		}
		var dcs []string
		if err := json.Unmarshal(b, &dcs); err != nil {
			return err
		}
		if len(dcs) < 2 || dcs[0] != "dc1" {
			return fmt.Errorf("datacenters %v", dcs)
		}
		return nil
	})

	// A service registered only in dc2 (through dc2's own server).
	reg := []byte(`{"Node":"pay-node","Address":"10.20.30.40","Service":{"Service":"payments","Port":9443,"Tags":["primary"]}}`)
	if _, err := e2ePut(hc, "http://"+s2.HTTPAddr()+"/v1/catalog/register", reg); err != nil {
		t.Fatal(err)
	}
	return &dcCluster{hc: hc, base: base, c1: c1}
}

func testDCForwardingHTTP(t *testing.T, x *dcCluster) {
	hc, base, c1 := x.hc, x.base, x.c1
	// Not in dc1.
	b, _, err := e2eGet(hc, base+"/v1/health/service/payments", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "10.20.30.40") {
		t.Fatalf("dc1 answered with dc2's instance: %s", b)
	}
	b, _, err = e2eGet(hc, base+"/v1/health/service/payments?dc=dc2", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var entries []struct {
		Node    struct{ Node, Address, Datacenter string }
		Service struct {
			Service string
			Port    int
		}
	}
	if err := json.Unmarshal(b, &entries); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if len(entries) != 1 || entries[0].Node.Address != "10.20.30.40" || entries[0].Service.Port != 9443 || entries[0].Node.Datacenter != "dc2" {
		t.Fatalf("?dc=dc2 answer: %s", b)
	}
	t.Logf("?dc=dc2 through %s: node %s %s dc=%s port %d", c1.Name, entries[0].Node.Node, entries[0].Node.Address, entries[0].Node.Datacenter, entries[0].Service.Port)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, body, _, err := e2eDo(ctx, hc, http.MethodGet, base+"/v1/health/service/payments?dc=nowhere", nil)
	if err != nil {
		t.Fatal(err)
	}
	if st != http.StatusInternalServerError || !strings.Contains(strings.ToLower(string(body)), "no path to datacenter") {
		t.Fatalf("?dc=nowhere: %d %q, want 500 \"no path to datacenter\"", st, body)
	}
	t.Logf("?dc=nowhere: %d %q", st, strings.TrimSpace(string(body)))
}

func testDCForwardingDNS(t *testing.T, x *dcCluster) {
	c1 := x.c1
	r, err := dnsQuery(c1.DNSAddr(), "payments.service.dc2.consul", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("payments.service.dc2.consul A: %s", r)
	}
	a, ok := r.Answer[0].(*dns.A)
	if !ok || a.A.String() != "10.20.30.40" {
		t.Fatalf("payments.service.dc2.consul A answer: %v", r.Answer[0])
	}
	r, err = dnsQuery(c1.DNSAddr(), "primary.payments.service.dc2.consul", dns.TypeSRV)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.SRV).Port != 9443 {
		t.Fatalf("primary.payments.service.dc2.consul SRV: %s", r)
	}
	// The local datacenter does not have it.
	r, err = dnsQuery(c1.DNSAddr(), "payments.service.consul", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeNameError {
		t.Fatalf("payments.service.consul (dc1): rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	r, err = dnsQuery(c1.DNSAddr(), "payments.service.nowhere.consul", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeNameError {
		t.Fatalf("payments.service.nowhere.consul: rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	t.Logf("dc2 A=%s, SRV port 9443; dc1 and unknown dc: NXDOMAIN", a.A)
}
