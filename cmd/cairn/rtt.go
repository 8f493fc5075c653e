package main

import (
	"context"
	"fmt"
	"io"

	"github.com/hashicorp/serf/coordinate"
)

// RTTCmd is `cairn rtt <node> [<node>]`, as `consul rtt`: the round trip
// time between two nodes estimated from their network coordinates. With
// one node the other is the agent's own.
type RTTCmd struct {
	WAN   bool     `name:"wan" help:"Use WAN coordinates: nodes are servers named <node>.<datacenter>."`
	Nodes []string `arg:"" help:"One or two node names."`
}

func (c *RTTCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdout())
}

func (c *RTTCmd) run(ctx context.Context, api *apiClient, stdout io.Writer) error {
	if len(c.Nodes) < 1 || len(c.Nodes) > 2 {
		return fail(1, "One or two node names must be specified")
	}
	nodes := c.Nodes
	if len(nodes) == 1 {
		var self struct {
			Config struct{ NodeName, Datacenter string }
		}
		if _, err := api.getJSON(ctx, "/v1/agent/self", nil, &self); err != nil {
			return fail(1, "Error querying agent: %v", err)
		}
		own := self.Config.NodeName
		if c.WAN {
			own += "." + self.Config.Datacenter
		}
		nodes = append(nodes, own)
	}
	coords := map[string]*coordinate.Coordinate{}
	kind := "LAN"
	if c.WAN {
		kind = "WAN"
		var dcs []struct {
			Coordinates []struct {
				Node  string
				Coord *coordinate.Coordinate
			}
		}
		if _, err := api.getJSON(ctx, "/v1/coordinate/datacenters", nil, &dcs); err != nil {
			return fail(1, "Error getting coordinates: %v", err)
		}
		for _, dc := range dcs {
			for _, e := range dc.Coordinates {
				coords[e.Node] = e.Coord
			}
		}
	} else {
		var entries []struct {
			Node  string
			Coord *coordinate.Coordinate
		}
		if _, err := api.getJSON(ctx, "/v1/coordinate/nodes", nil, &entries); err != nil {
			return fail(1, "Error getting coordinates: %v", err)
		}
		for _, e := range entries {
			coords[e.Node] = e.Coord
		}
	}
	a, b := coords[nodes[0]], coords[nodes[1]]
	for i, c := range []*coordinate.Coordinate{a, b} {
		if c == nil {
			return fail(1, "Could not find a coordinate for node %q", nodes[i])
		}
	}
	if !a.IsCompatibleWith(b) {
		return fail(1, "Coordinates of %q and %q are not compatible", nodes[0], nodes[1])
	}
	ms := a.DistanceTo(b).Seconds() * 1000
	fmt.Fprintf(stdout, "Estimated %s <-> %s rtt: %.3f ms (using %s coordinates)\n", nodes[0], nodes[1], ms, kind)
	return nil
}
