package agent_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"

	"github.com/cairnd/cairn/cluster/testutil"
)

// testDCQueryFailover (issue 17 part 6, a step of
// TestDatacenterForwardingE2E): payments gets a dc1 instance; queries
// failing over by Datacenters and by NearestN answer from dc1 while it has
// a healthy instance, and from dc2 over HTTP and DNS (through the dc1
// client's cache) once every dc1 instance is critical.
func testDCQueryFailover(t *testing.T, x *dcCluster) {
	c, err := api.NewClient(&api.Config{Address: x.c1.HTTPAddr()})
	if err != nil {
		t.Fatal(err)
	}
	registerDB(t, c, "pay-dc1", "10.1.0.1", "payments", nil, nil, api.HealthPassing)
	for _, def := range []*api.PreparedQueryDefinition{
		{Name: "pay", Service: api.ServiceQuery{Service: "payments", Failover: api.QueryFailoverOptions{Datacenters: []string{"dc2"}}}},
		{Name: "pay-near", Service: api.ServiceQuery{Service: "payments", Failover: api.QueryFailoverOptions{NearestN: 1}}},
	} {
		if _, _, err := c.PreparedQuery().Create(def, nil); err != nil {
			t.Fatal(err)
		}
	}
	// answers checks an execute of each query and a DNS lookup.
	answers := func(wantDC, wantAddr string, wantFailovers int) error {
		for _, q := range []string{"pay", "pay-near"} {
			res, _, err := c.PreparedQuery().Execute(q, nil)
			if err != nil {
				return err
			}
			if len(res.Nodes) != 1 || res.Datacenter != wantDC || res.Nodes[0].Node.Address != wantAddr || res.Failovers != wantFailovers {
				return fmt.Errorf("execute %s: dc %s, %d nodes, %d failovers", q, res.Datacenter, len(res.Nodes), res.Failovers)
			}
			a, rcode, _ := dnsAddrs(t, x.c1.DNSAddr(), q+".query.consul")
			if rcode != dns.RcodeSuccess || !slices.Equal(a, []string{wantAddr}) {
				return fmt.Errorf("%s.query.consul = %v rcode %d", q, a, rcode)
			}
		}
		return nil
	}
	testutil.Eventually(t, 15*time.Second, "queries answer from dc1", func() error { return answers("dc1", "10.1.0.1", 0) })

	// Every dc1 instance fails.
	registerDB(t, c, "pay-dc1", "10.1.0.1", "payments", nil, nil, api.HealthCritical)
	testutil.Eventually(t, 15*time.Second, "queries fail over to dc2", func() error { return answers("dc2", "10.20.30.40", 1) })
	srv, err := dnsQuery(x.c1.DNSAddr(), "pay.query.consul", dns.TypeSRV)
	if err != nil || len(srv.Answer) != 1 || srv.Answer[0].(*dns.SRV).Target != "pay-node.node.dc2.consul." {
		t.Fatalf("pay.query.consul SRV = %v, %v", srv, err)
	}
}
