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

// registerDB registers service svc on node (address addr, meta) with one
// service check in status.
func registerDB(t *testing.T, c *api.Client, node, addr, svc string, tags []string, meta map[string]string, status string) {
	t.Helper()
	_, err := c.Catalog().Register(&api.CatalogRegistration{
		Node: node, Address: addr, NodeMeta: meta,
		Service: &api.AgentService{ID: svc, Service: svc, Port: 5432, Tags: tags},
		Check:   &api.AgentCheck{Node: node, CheckID: "chk-" + svc, Name: "chk", Status: status, ServiceID: svc},
	}, nil)
	if err != nil {
		t.Fatalf("register %s on %s: %v", svc, node, err)
	}
}

// executeNodes runs query id and returns the answering nodes, sorted.
func executeNodes(t *testing.T, c *api.Client, id string) ([]string, *api.PreparedQueryExecuteResponse) {
	t.Helper()
	res, _, err := c.PreparedQuery().Execute(id, nil)
	if err != nil {
		t.Fatalf("execute %s: %v", id, err)
	}
	var nodes []string
	for _, n := range res.Nodes {
		nodes = append(nodes, n.Node.Node)
	}
	slices.Sort(nodes)
	return nodes, res
}

// dnsAddrs resolves name over UDP and returns the A records' addresses
// (sorted), the rcode and the first TTL.
func dnsAddrs(t *testing.T, server, name string) ([]string, int, uint32) {
	t.Helper()
	m, err := dnsQuery(server, name, dns.TypeA)
	if err != nil {
		t.Fatalf("dns %s: %v", name, err)
	}
	var out []string
	var ttl uint32
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
			ttl = a.Hdr.Ttl
		}
	}
	slices.Sort(out)
	return out, m.Rcode, ttl
}

// TestPreparedQueryE2E (issue 17 part 6) drives /v1/query with the
// official client on a dev agent: create, get, list, execute with Tags
// (!tag), OnlyPassing and NodeMeta, update, explain, a name_prefix_match
// template, DNS for q.query.consul and geo-db-eu.query.consul, delete.
func TestPreparedQueryE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real agent process")
	}
	p, c := devAgent(t, nil)
	registerDB(t, c, "n1", "10.0.0.1", "db", []string{"v1"}, map[string]string{"rack": "r1"}, api.HealthPassing)
	registerDB(t, c, "n2", "10.0.0.2", "db", []string{"v2"}, nil, api.HealthPassing)
	registerDB(t, c, "n3", "10.0.0.3", "db", []string{"v1"}, nil, api.HealthWarning)
	registerDB(t, c, "n1", "10.0.0.1", "db-eu", nil, map[string]string{"rack": "r1"}, api.HealthPassing)

	def := &api.PreparedQueryDefinition{
		Name: "q",
		Service: api.ServiceQuery{Service: "db", Tags: []string{"!v2"}, OnlyPassing: true,
			NodeMeta: map[string]string{"rack": "r1"}},
		DNS: api.QueryDNSOptions{TTL: "7s"},
	}
	id, _, err := c.PreparedQuery().Create(def, nil)
	if err != nil || len(id) != 36 {
		t.Fatalf("Create = %q, %v", id, err)
	}
	if _, _, err := c.PreparedQuery().Create(def, nil); err == nil {
		t.Error("a second query named q was accepted")
	}
	got, _, err := c.PreparedQuery().Get(id, nil)
	if err != nil || len(got) != 1 || got[0].Name != "q" || got[0].Service.Tags[0] != "!v2" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if list, _, err := c.PreparedQuery().List(nil); err != nil || len(list) != 1 {
		t.Fatalf("List = %+v, %v", list, err)
	}

	// By ID and by name: NodeMeta and OnlyPassing leave n1.
	for _, ref := range []string{id, "q"} {
		nodes, res := executeNodes(t, c, ref)
		if !slices.Equal(nodes, []string{"n1"}) || res.Service != "db" || res.DNS.TTL != "7s" || res.Datacenter != "dc1" {
			t.Errorf("execute %s = %v, %+v", ref, nodes, res)
		}
	}
	a, rcode, ttl := dnsAddrs(t, p.DNSAddr(), "q.query.consul")
	if rcode != dns.RcodeSuccess || !slices.Equal(a, []string{"10.0.0.1"}) || ttl != 7 {
		t.Errorf("q.query.consul = %v rcode %d ttl %d", a, rcode, ttl)
	}

	// Without NodeMeta and OnlyPassing, !v2 still drops n2; warning n3 is in.
	def.ID = id
	def.Service.NodeMeta, def.Service.OnlyPassing = nil, false
	if _, err := c.PreparedQuery().Update(def, nil); err != nil {
		t.Fatal(err)
	}
	if nodes, _ := executeNodes(t, c, "q"); !slices.Equal(nodes, []string{"n1", "n3"}) {
		t.Errorf("after update: %v, want n1 n3", nodes)
	}
	testutil.Eventually(t, 10*time.Second, "DNS sees the updated query", func() error {
		if a, _, _ := dnsAddrs(t, p.DNSAddr(), "q.query.consul"); !slices.Equal(a, []string{"10.0.0.1", "10.0.0.3"}) {
			return fmt.Errorf("q.query.consul = %v", a)
		}
		return nil
	})

	// A template: geo-db-<suffix> selects service db-<suffix>.
	tpl := &api.PreparedQueryDefinition{
		Name:     "geo-db-",
		Template: api.QueryTemplate{Type: "name_prefix_match"},
		Service:  api.ServiceQuery{Service: "db-${name.suffix}"},
	}
	if _, _, err := c.PreparedQuery().Create(tpl, nil); err != nil {
		t.Fatal(err)
	}
	if nodes, res := executeNodes(t, c, "geo-db-eu"); !slices.Equal(nodes, []string{"n1"}) || res.Service != "db-eu" {
		t.Errorf("execute geo-db-eu = %v, %+v", nodes, res)
	}
	var ex struct{ Query api.PreparedQueryDefinition }
	if _, err := c.Raw().Query("/v1/query/geo-db-eu/explain", &ex, nil); err != nil || ex.Query.Service.Service != "db-eu" {
		t.Errorf("explain = %+v, %v", ex, err)
	}
	if a, rcode, _ := dnsAddrs(t, p.DNSAddr(), "geo-db-eu.query.consul"); rcode != dns.RcodeSuccess || !slices.Equal(a, []string{"10.0.0.1"}) {
		t.Errorf("geo-db-eu.query.consul = %v rcode %d", a, rcode)
	}
	if _, rcode, _ := dnsAddrs(t, p.DNSAddr(), "nope.query.consul"); rcode != dns.RcodeNameError {
		t.Errorf("nope.query.consul rcode %d, want NXDOMAIN", rcode)
	}

	if _, err := c.PreparedQuery().Delete(id, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.PreparedQuery().Get(id, nil); err == nil {
		t.Error("Get after Delete succeeded")
	}
	if _, _, err := c.PreparedQuery().Execute("q", nil); err == nil {
		t.Error("Execute after Delete succeeded")
	}
}
