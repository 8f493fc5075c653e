package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	agenthttp "github.com/cairnd/cairn/agent/http"
)

// MembersCmd is `cairn members`: the gossip pool as this agent sees it.
type MembersCmd struct {
	Detailed bool   `help:"Show every member tag instead of the summary columns."`
	WAN      bool   `name:"wan" help:"List the WAN pool (servers of every datacenter)."`
	Status   string `default:".*" help:"Only members whose status matches this regular expression (alive, leaving, left, failed)."`
}

func (c *MembersCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdout())
}

// memberStatus names serf's numeric status as Consul prints it.
func memberStatus(s int) string {
	switch s {
	case agenthttp.MemberStatusAlive:
		return "alive"
	case agenthttp.MemberStatusLeaving:
		return "leaving"
	case agenthttp.MemberStatusLeft:
		return "left"
	case agenthttp.MemberStatusFailed:
		return "failed"
	}
	return "none"
}

func (c *MembersCmd) run(ctx context.Context, api *apiClient, stdout io.Writer) error {
	re, err := regexp.Compile(c.Status)
	if err != nil {
		return fail(1, "Failed to compile status regexp: %v", err)
	}
	q := url.Values{}
	if c.WAN {
		q.Set("wan", "1")
	}
	var members []agenthttp.Member
	if _, err := api.getJSON(ctx, "/v1/agent/members", q, &members); err != nil {
		return fail(1, "Error retrieving members: %v", err)
	}
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	if c.Detailed {
		fmt.Fprintln(tw, "Node\tAddress\tStatus\tTags")
	} else {
		fmt.Fprintln(tw, "Node\tAddress\tStatus\tType\tBuild\tProtocol\tDC")
	}
	shown := 0
	for _, m := range members {
		status := memberStatus(m.Status)
		if !re.MatchString(status) {
			continue
		}
		shown++
		addr := net.JoinHostPort(m.Addr, strconv.Itoa(int(m.Port)))
		if c.Detailed {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Name, addr, status, formatTags(m.Tags))
			continue
		}
		typ := "client"
		if m.Tags["role"] == "consul" {
			typ = "server"
		}
		build, _, _ := strings.Cut(m.Tags["build"], ":")
		proto := m.Tags["vsn"]
		if proto == "" {
			proto = "2"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, addr, status, typ, build, proto, m.Tags["dc"])
	}
	if shown == 0 {
		// Consul exits 2 when the filter leaves nothing, so scripts can
		// tell "no such members" from success.
		return exitCode(2)
	}
	return tw.Flush()
}

func formatTags(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+tags[k])
	}
	return strings.Join(parts, ",")
}

// JoinCmd is `cairn join`.
type JoinCmd struct {
	WAN   bool     `name:"wan" help:"Join the WAN pool (servers only)."`
	Addrs []string `arg:"" name:"address" help:"Serf address (host:port) of an agent to join."`
}

func (c *JoinCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdout(), g.stderr())
}

func (c *JoinCmd) run(ctx context.Context, api *apiClient, stdout, stderr io.Writer) error {
	q := url.Values{}
	if c.WAN {
		q.Set("wan", "1")
	}
	joined := 0
	for _, addr := range c.Addrs {
		if _, _, err := api.do(ctx, http.MethodPut, "/v1/agent/join/"+url.PathEscape(addr), q, nil); err != nil {
			fmt.Fprintf(stderr, "Error joining address '%s': %v\n", addr, err)
			continue
		}
		joined++
	}
	if joined == 0 {
		return fail(1, "Failed to join any nodes.")
	}
	fmt.Fprintf(stdout, "Successfully joined cluster by contacting %d nodes.\n", joined)
	return nil
}

// LeaveCmd is `cairn leave`: the local agent leaves gracefully and exits.
type LeaveCmd struct{}

func (c *LeaveCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	if _, _, err := newAPIClient(g).do(ctx, http.MethodPut, "/v1/agent/leave", nil, nil); err != nil {
		return fail(1, "Error leaving: %v", err)
	}
	fmt.Fprintln(g.stdout(), "Graceful leave complete")
	return nil
}

// ForceLeaveCmd is `cairn force-leave`.
type ForceLeaveCmd struct {
	Prune bool   `help:"Remove the node from the member list entirely."`
	Node  string `arg:"" help:"Name of the failed node."`
}

func (c *ForceLeaveCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	q := url.Values{}
	if c.Prune {
		q.Set("prune", "1")
	}
	if _, _, err := newAPIClient(g).do(ctx, http.MethodPut, "/v1/agent/force-leave/"+url.PathEscape(c.Node), q, nil); err != nil {
		return fail(1, "Error force leaving: %v", err)
	}
	return nil
}
