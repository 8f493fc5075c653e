package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
)

// OperatorRaftRemovePeerCmd is `cairn operator raft remove-peer`.
type OperatorRaftRemovePeerCmd struct {
	ID      string `name:"id" help:"ID of the server to remove (its node name)."`
	Address string `help:"IP:port of the server to remove."`
}

func (c *OperatorRaftRemovePeerCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdout())
}

func (c *OperatorRaftRemovePeerCmd) run(ctx context.Context, api *apiClient, stdout io.Writer) error {
	if (c.ID == "") == (c.Address == "") {
		return fmt.Errorf("Error removing peer: must specify exactly one of -id or -address")
	}
	q := url.Values{}
	what := ""
	if c.ID != "" {
		q.Set("id", c.ID)
		what = "with id " + c.ID
	} else {
		q.Set("address", c.Address)
		what = "with address " + c.Address
	}
	if _, _, err := api.do(ctx, http.MethodDelete, "/v1/operator/raft/peer", q, nil); err != nil {
		return fmt.Errorf("Error removing peer: %w", err)
	}
	fmt.Fprintf(stdout, "Removed peer %s\n", what)
	return nil
}

// OperatorRaftTransferLeaderCmd is `cairn operator raft transfer-leader`.
type OperatorRaftTransferLeaderCmd struct {
	ID string `name:"id" help:"Raft ID (node name) of the server to lead; empty: the most up-to-date other voter."`
}

func (c *OperatorRaftTransferLeaderCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdout())
}

func (c *OperatorRaftTransferLeaderCmd) run(ctx context.Context, api *apiClient, stdout io.Writer) error {
	q := url.Values{}
	if c.ID != "" {
		q.Set("id", c.ID)
	}
	var out structs.TransferLeaderResponse
	b, _, err := api.do(ctx, http.MethodPost, "/v1/operator/raft/transfer-leader", q, nil)
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err == nil && !out.Success {
		err = errors.New("the agent reported no success")
	}
	if err != nil {
		return fmt.Errorf("Error transferring leadership: %w", err)
	}
	fmt.Fprintln(stdout, "Success")
	return nil
}

// OperatorAutopilotCmd is `cairn operator autopilot`.
type OperatorAutopilotCmd struct {
	GetConfig OperatorAutopilotGetConfigCmd `cmd:"" name:"get-config" help:"Print the autopilot configuration."`
	State     OperatorAutopilotStateCmd     `cmd:"" help:"Print autopilot's view of server health."`
}

// OperatorAutopilotGetConfigCmd is `cairn operator autopilot get-config`.
type OperatorAutopilotGetConfigCmd struct {
	Stale bool `help:"Let any server answer (works without a leader)."`
}

func (c *OperatorAutopilotGetConfigCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdout())
}

func (c *OperatorAutopilotGetConfigCmd) run(ctx context.Context, api *apiClient, stdout io.Writer) error {
	var conf structs.AutopilotConfig
	if _, err := api.getJSON(ctx, "/v1/operator/autopilot/configuration", readParams("", c.Stale), &conf); err != nil {
		return fmt.Errorf("Error querying Autopilot configuration: %w", err)
	}
	fmt.Fprintf(stdout, "CleanupDeadServers = %v\n", conf.CleanupDeadServers)
	fmt.Fprintf(stdout, "LastContactThreshold = %s\n", conf.LastContactThreshold.Duration())
	fmt.Fprintf(stdout, "MaxTrailingLogs = %d\n", conf.MaxTrailingLogs)
	fmt.Fprintf(stdout, "MinQuorum = %d\n", conf.MinQuorum)
	fmt.Fprintf(stdout, "ServerStabilizationTime = %s\n", conf.ServerStabilizationTime.Duration())
	fmt.Fprintf(stdout, "RedundancyZoneTag = %q\n", conf.RedundancyZoneTag)
	fmt.Fprintf(stdout, "DisableUpgradeMigration = %v\n", conf.DisableUpgradeMigration)
	fmt.Fprintf(stdout, "UpgradeVersionTag = %q\n", conf.UpgradeVersionTag)
	return nil
}

// OperatorAutopilotStateCmd is `cairn operator autopilot state`.
type OperatorAutopilotStateCmd struct{}

func (c *OperatorAutopilotStateCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdout())
}

func (c *OperatorAutopilotStateCmd) run(ctx context.Context, api *apiClient, stdout io.Writer) error {
	// 429 means "unhealthy" and carries the same report.
	body, code, err := api.do(ctx, http.MethodGet, "/v1/operator/autopilot/health", nil, nil)
	var h structs.OperatorHealthReply
	if ae, ok := err.(*apiError); ok && ae.Status == http.StatusTooManyRequests {
		body, code, err = []byte(ae.Body), http.StatusOK, nil
	}
	if err != nil {
		return fmt.Errorf("Error querying Autopilot state: %w", err)
	}
	if code != http.StatusOK {
		return fmt.Errorf("Error querying Autopilot state: status %d", code)
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return fmt.Errorf("Error decoding Autopilot state: %w", err)
	}
	fmt.Fprintf(stdout, "Healthy:           %v\n", h.Healthy)
	fmt.Fprintf(stdout, "Failure Tolerance: %d\n\n", h.FailureTolerance)
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "Name\tID\tAddress\tSerf\tLeader\tVoter\tHealthy\tLastContact\tLastTerm\tLastIndex\tStableSince")
	for _, s := range h.Servers {
		stable := "-"
		if !s.StableSince.IsZero() {
			stable = s.StableSince.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%v\t%v\t%s\t%d\t%d\t%s\n", s.Name, s.ID, s.Address, s.SerfStatus,
			s.Leader, s.Voter, s.Healthy, s.LastContact.Duration(), s.LastTerm, s.LastIndex, stable)
	}
	return tw.Flush()
}
