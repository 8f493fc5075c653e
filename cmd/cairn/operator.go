package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/cairnd/cairn/cluster/structs"
)

// OperatorCmd groups the operator commands.
type OperatorCmd struct {
	Raft      OperatorRaftCmd      `cmd:"" help:"Inspect the Raft configuration."`
	Autopilot OperatorAutopilotCmd `cmd:"" help:"Autopilot configuration and server health."`
}

// OperatorRaftCmd is `cairn operator raft`.
type OperatorRaftCmd struct {
	ListPeers      OperatorRaftListPeersCmd      `cmd:"" name:"list-peers" help:"List the Raft peers."`
	RemovePeer     OperatorRaftRemovePeerCmd     `cmd:"" name:"remove-peer" help:"Remove a server from the Raft configuration."`
	TransferLeader OperatorRaftTransferLeaderCmd `cmd:"" name:"transfer-leader" help:"Hand Raft leadership to another server (-id picks which)."`
}

// OperatorRaftListPeersCmd is `cairn operator raft list-peers`.
type OperatorRaftListPeersCmd struct {
	Stale bool `help:"Let any server answer (works without a leader)."`
}

func (c *OperatorRaftListPeersCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdout())
}

func (c *OperatorRaftListPeersCmd) run(ctx context.Context, api *apiClient, stdout io.Writer) error {
	var out structs.RaftConfigurationResponse
	if _, err := api.getJSON(ctx, "/v1/operator/raft/configuration", readParams("", c.Stale), &out); err != nil {
		return fail(1, "Error getting peers: %v", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "Node\tID\tAddress\tState\tVoter\tRaftProtocol")
	for _, s := range out.Servers {
		state := "follower"
		if s.Leader {
			state = "leader"
		}
		proto := s.Protocol
		if proto == "" {
			proto = "<=1"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\n", s.Node, s.ID, s.Address, state, s.Voter, proto)
	}
	return tw.Flush()
}
