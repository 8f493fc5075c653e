package main

import (
	"testing"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/serf/coordinate"
)

// TestRTT pins `cairn rtt`'s output (consul rtt's) with coordinates the
// test seeds 40 ms apart, and its errors.
func TestRTT(t *testing.T) {
	a := devAgent(t)
	c, err := api.NewClient(&api.Config{Address: a.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	for node, off := range map[string]float64{"n1": 0.01, "n2": 0.05} {
		if _, err := c.Catalog().Register(&api.CatalogRegistration{Node: node, Address: "10.0.0.1"}, nil); err != nil {
			t.Fatal(err)
		}
		coord := coordinate.NewCoordinate(coordinate.DefaultConfig())
		coord.Vec[0] = off
		if _, err := c.Coordinate().Update(&api.CoordinateEntry{Node: node, Coord: coord}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Heights (1e-5 s each) add 0.020 ms to the 40 ms of the vectors.
	check(t, "two nodes", a.HTTPAddr, &RTTCmd{Nodes: []string{"n1", "n2"}}, "",
		result{stdout: "Estimated n1 <-> n2 rtt: 40.020 ms (using LAN coordinates)\n"})
	// WAN: the server's own WAN coordinate, against itself.
	zero := 0
	w := startAgent(t, AgentCmd{Dev: true, SerfWANPort: &zero})
	check(t, "wan, one node", w.HTTPAddr, &RTTCmd{WAN: true, Nodes: []string{"cli-test.dc1"}}, "",
		result{stdout: "~^Estimated cli-test.dc1 <-> cli-test.dc1 rtt: [0-9.]+ ms \\(using WAN coordinates\\)\n$"})
	check(t, "unknown node", a.HTTPAddr, &RTTCmd{Nodes: []string{"n1", "nope"}}, "",
		result{stderr: "Could not find a coordinate for node \"nope\"\n", code: 1})
	check(t, "three nodes", a.HTTPAddr, &RTTCmd{Nodes: []string{"a", "b", "c"}}, "",
		result{stderr: "One or two node names must be specified\n", code: 1})
	check(t, "agent down", unreachable, &RTTCmd{Nodes: []string{"n1"}}, "",
		result{stderr: "~^Error querying agent: Error connecting", code: 1})
}
