package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Check IDs the agent uses for maintenance mode, Consul's names.
const (
	nodeMaintCheckID    = "_node_maintenance"
	serviceMaintPrefix  = "_service_maintenance:"
	maintListNodeHeader = "Node:"
)

// MaintCmd is `cairn maint`: toggle or list node/service maintenance.
type MaintCmd struct {
	Enable  bool   `help:"Enable maintenance mode."`
	Disable bool   `help:"Disable maintenance mode."`
	Reason  string `help:"Text explaining the maintenance (with --enable)."`
	Service string `help:"Act on this service ID instead of the node."`
}

func (c *MaintCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdout())
}

func (c *MaintCmd) run(ctx context.Context, api *apiClient, stdout io.Writer) error {
	switch {
	case c.Enable && c.Disable:
		return fail(1, "Only one of --enable or --disable may be provided")
	case !c.Enable && c.Reason != "":
		return fail(1, "Reason may only be provided with --enable")
	case !c.Enable && !c.Disable:
		if c.Service != "" {
			return fail(1, "--service requires --enable or --disable")
		}
		return c.list(ctx, api, stdout)
	}
	q := url.Values{"enable": {strconv.FormatBool(c.Enable)}}
	if c.Reason != "" {
		q.Set("reason", c.Reason)
	}
	path := "/v1/agent/maintenance"
	if c.Service != "" {
		path = "/v1/agent/service/maintenance/" + url.PathEscape(c.Service)
	}
	if _, _, err := api.do(ctx, http.MethodPut, path, q, nil); err != nil {
		return fail(1, "Error toggling maintenance mode: %v", err)
	}
	state := "disabled"
	if c.Enable {
		state = "enabled"
	}
	if c.Service != "" {
		fmt.Fprintf(stdout, "Service maintenance is now %s for %q\n", state, c.Service)
	} else {
		fmt.Fprintf(stdout, "Node maintenance is now %s\n", state)
	}
	return nil
}

type agentCheck struct {
	Node    string
	CheckID string
	Notes   string
}

// list prints the active maintenance checks in Consul's layout.
func (c *MaintCmd) list(ctx context.Context, api *apiClient, stdout io.Writer) error {
	var checks map[string]agentCheck
	if _, err := api.getJSON(ctx, "/v1/agent/checks", nil, &checks); err != nil {
		return fail(1, "Error listing maintenance: %v", err)
	}
	ids := make([]string, 0, len(checks))
	for id := range checks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		chk := checks[id]
		switch {
		case id == nodeMaintCheckID:
			fmt.Fprintln(stdout, maintListNodeHeader)
			fmt.Fprintf(stdout, "  Name:   %s\n", chk.Node)
			fmt.Fprintf(stdout, "  Reason: %s\n\n", chk.Notes)
		case strings.HasPrefix(id, serviceMaintPrefix):
			fmt.Fprintln(stdout, "Service:")
			fmt.Fprintf(stdout, "  ID:     %s\n", strings.TrimPrefix(id, serviceMaintPrefix))
			fmt.Fprintf(stdout, "  Reason: %s\n\n", chk.Notes)
		}
	}
	return nil
}
