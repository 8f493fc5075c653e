package agent_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/serf/coordinate"
	"github.com/miekg/dns"

	"github.com/cairnd/cairn/cluster/testutil"
)

// seedCoordinates sets each node's coordinate to the origin moved by
// offsets[node] seconds on the first axis.
func seedCoordinates(t *testing.T, c *api.Client, offsets map[string]float64) {
	t.Helper()
	for node, off := range offsets {
		coord := coordinate.NewCoordinate(coordinate.DefaultConfig())
		coord.Vec[0] = off
		if _, err := c.Coordinate().Update(&api.CoordinateEntry{Node: node, Coord: coord}, nil); err != nil {
			t.Fatalf("seed %s: %v", node, err)
		}
	}
}

// TestNearE2E (issue 17 part 5): with coordinates seeded by the test
// (the lone dev agent's own stays at the origin), ?near=_agent orders
// health, catalog and prepared query answers by RTT, and
// /v1/coordinate/{nodes,node,datacenters} show them.
func TestNearE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real agent process")
	}
	p, c := devAgent(t, nil)
	for i, n := range []string{"n1", "n2", "n3"} {
		registerDB(t, c, n, fmt.Sprintf("10.0.0.%d", i+1), "db", nil, nil, api.HealthPassing)
	}
	// Wait for the agent's own node, then seed: n1 1 ms away, n3 10 ms,
	// n2 50 ms.
	testutil.Eventually(t, 20*time.Second, "agent node registered", func() error {
		n, _, err := c.Catalog().Node("dev", nil)
		if err != nil || n == nil {
			return fmt.Errorf("dev node: %v", err)
		}
		return nil
	})
	seedCoordinates(t, c, map[string]float64{"dev": 0, "n1": 0.001, "n2": 0.05, "n3": 0.01})

	entries, _, err := c.Coordinate().Nodes(nil)
	if err != nil || len(entries) < 4 {
		t.Fatalf("coordinate nodes = %d, %v", len(entries), err)
	}
	one, _, err := c.Coordinate().Node("n2", nil)
	if err != nil || len(one) != 1 || one[0].Coord.Vec[0] != 0.05 {
		t.Fatalf("coordinate node n2 = %+v, %v", one, err)
	}
	dcs, err := c.Coordinate().Datacenters()
	if err != nil || len(dcs) != 1 || dcs[0].Datacenter != "dc1" || len(dcs[0].Coordinates) != 1 {
		t.Fatalf("coordinate datacenters = %+v, %v", dcs, err)
	}

	want := []string{"n1", "n3", "n2"}
	near := &api.QueryOptions{Near: "_agent"}
	for range 3 { // shuffled orders must all come back sorted
		health, _, err := c.Health().Service("db", "", false, near)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range health {
			got = append(got, e.Node.Node)
		}
		if !slices.Equal(got, want) {
			t.Errorf("health ?near=_agent = %v, want %v", got, want)
		}
	}
	rows, _, err := c.Catalog().Service("db", "", &api.QueryOptions{Near: "n2"})
	if err != nil || len(rows) != 3 || rows[0].Node != "n2" || rows[1].Node != "n3" {
		t.Errorf("catalog ?near=n2 = %+v, %v", rows, err)
	}
	if _, _, err := c.PreparedQuery().Create(&api.PreparedQueryDefinition{Name: "db-near",
		Service: api.ServiceQuery{Service: "db", Near: "_agent"}}, nil); err != nil {
		t.Fatal(err)
	}
	res, _, err := c.PreparedQuery().Execute("db-near", nil)
	if err != nil || len(res.Nodes) != 3 || res.Nodes[0].Node.Node != "n1" || res.Nodes[2].Node.Node != "n2" {
		t.Errorf("query Near=_agent = %+v, %v", res, err)
	}
	// DNS keeps a Near query's order (other answers are shuffled).
	for range 3 {
		m, err := dnsQuery(p.DNSAddr(), "db-near.query.consul", dns.TypeA)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, rr := range m.Answer {
			got = append(got, rr.(*dns.A).A.String())
		}
		if !slices.Equal(got, []string{"10.0.0.1", "10.0.0.3", "10.0.0.2"}) {
			t.Errorf("db-near.query.consul = %v, want nearest first", got)
		}
	}
}
