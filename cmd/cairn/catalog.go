package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
)

// CatalogCmd groups the catalog commands (Consul's `consul catalog`).
type CatalogCmd struct {
	Services CatalogServicesCmd `cmd:"" help:"List the services in the catalog."`
	Nodes    CatalogNodesCmd    `cmd:"" help:"List the nodes in the catalog."`
}

// CatalogServicesCmd is `cairn catalog services`.
type CatalogServicesCmd struct {
	Tags       bool   `help:"Show each service's tags."`
	Datacenter string `name:"datacenter" help:"Datacenter to query (default: the agent's)."`
	Stale      bool   `help:"Let any server answer (may be stale)."`
}

func (c *CatalogServicesCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdout(), g.stderr())
}

func (c *CatalogServicesCmd) run(ctx context.Context, api *apiClient, stdout, stderr io.Writer) error {
	var services map[string][]string
	if _, err := api.getJSON(ctx, "/v1/catalog/services", readParams(c.Datacenter, c.Stale), &services); err != nil {
		return fail(1, "Error listing services: %v", err)
	}
	if len(services) == 0 {
		fmt.Fprintln(stderr, "No services match the given query - try expanding your search.")
		return nil
	}
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, n := range names {
		if c.Tags {
			tags := append([]string(nil), services[n]...)
			sort.Strings(tags)
			fmt.Fprintf(tw, "%s\t%s\n", n, strings.Join(tags, ","))
		} else {
			fmt.Fprintln(tw, n)
		}
	}
	return tw.Flush()
}

// CatalogNodesCmd is `cairn catalog nodes`.
type CatalogNodesCmd struct {
	Detailed   bool   `help:"Print the full node ID."`
	Datacenter string `name:"datacenter" help:"Datacenter to query (default: the agent's)."`
	Stale      bool   `help:"Let any server answer (may be stale)."`
}

type catalogNode struct {
	ID         string
	Node       string
	Address    string
	Datacenter string
}

func (c *CatalogNodesCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdout(), g.stderr())
}

func (c *CatalogNodesCmd) run(ctx context.Context, api *apiClient, stdout, stderr io.Writer) error {
	var nodes []catalogNode
	if _, err := api.getJSON(ctx, "/v1/catalog/nodes", readParams(c.Datacenter, c.Stale), &nodes); err != nil {
		return fail(1, "Error listing nodes: %v", err)
	}
	if len(nodes) == 0 {
		fmt.Fprintln(stderr, "No nodes match the given query - try expanding your search.")
		return nil
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Node < nodes[j].Node })
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Node\tID\tAddress\tDC")
	for _, n := range nodes {
		id := n.ID
		if !c.Detailed && len(id) > 8 {
			id = id[:8] // Consul shows the first UUID group
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.Node, id, n.Address, n.Datacenter)
	}
	return tw.Flush()
}

func readParams(dc string, stale bool) url.Values {
	q := url.Values{}
	if dc != "" {
		q.Set("dc", dc)
	}
	if stale {
		q.Set("stale", "")
	}
	return q
}
