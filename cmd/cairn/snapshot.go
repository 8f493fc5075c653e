package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"text/tabwriter"

	"github.com/cairnd/cairn/cluster/snapshot"
)

// maxSnapshotFile bounds what restore and inspect read from disk: an
// archive travels as one RPC frame, so anything larger cannot be real.
const maxSnapshotFile = 64 << 20

// SnapshotCmd is `cairn snapshot`, Consul's save/restore/inspect.
type SnapshotCmd struct {
	Save    SnapshotSaveCmd    `cmd:"" help:"Save a snapshot of the servers' state to a file (atomically, verified)."`
	Restore SnapshotRestoreCmd `cmd:"" help:"Restore a snapshot file on every server (replaces all state)."`
	Inspect SnapshotInspectCmd `cmd:"" help:"Verify a snapshot file and print its metadata and record counts."`
}

// SnapshotSaveCmd is `cairn snapshot save <file>`.
type SnapshotSaveCmd struct {
	File  string `arg:"" help:"Where to write the snapshot."`
	Stale bool   `help:"Let any server answer (works without a leader)."`
}

func (c *SnapshotSaveCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdout())
}

func (c *SnapshotSaveCmd) run(ctx context.Context, api *apiClient, stdout io.Writer) error {
	q := url.Values{}
	if c.Stale {
		q.Set("stale", "")
	}
	body, _, err := api.do(ctx, http.MethodGet, "/v1/snapshot", q, nil)
	if err != nil {
		return fmt.Errorf("Error saving snapshot: %w", err)
	}
	// Verify before writing, so a file that exists is a good one.
	a, err := snapshot.Decode(body)
	if err != nil {
		return fmt.Errorf("Error verifying snapshot: %w", err)
	}
	if _, err := a.Verify(); err != nil {
		return fmt.Errorf("Error verifying snapshot: %w", err)
	}
	if err := snapshot.SaveFile(c.File, body); err != nil {
		return fmt.Errorf("Error writing snapshot file: %w", err)
	}
	fmt.Fprintf(stdout, "Saved and verified snapshot to index %d\n", a.Meta.Index)
	return nil
}

// SnapshotRestoreCmd is `cairn snapshot restore <file>`.
type SnapshotRestoreCmd struct {
	File string `arg:"" help:"Snapshot file to restore."`
}

func (c *SnapshotRestoreCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdout())
}

func (c *SnapshotRestoreCmd) run(ctx context.Context, api *apiClient, stdout io.Writer) error {
	b, err := readSnapshotFile(c.File)
	if err != nil {
		return err
	}
	// Refuse a damaged file here with the reason; the agent and the
	// leader check again.
	if _, err := snapshot.Decode(b); err != nil {
		return fmt.Errorf("Error restoring snapshot: %s: %w", c.File, err)
	}
	if _, _, err := api.do(ctx, http.MethodPut, "/v1/snapshot", nil, bytes.NewReader(b)); err != nil {
		return fmt.Errorf("Error restoring snapshot: %w", err)
	}
	fmt.Fprintln(stdout, "Restored snapshot")
	return nil
}

// SnapshotInspectCmd is `cairn snapshot inspect <file>`.
type SnapshotInspectCmd struct {
	File string `arg:"" help:"Snapshot file to inspect."`
}

func (c *SnapshotInspectCmd) Run(g *Globals) error { return c.run(g.stdout()) }

func (c *SnapshotInspectCmd) run(stdout io.Writer) error {
	b, err := readSnapshotFile(c.File)
	if err != nil {
		return err
	}
	a, err := snapshot.Decode(b)
	if err != nil {
		return fmt.Errorf("Error inspecting snapshot: %s: %w", c.File, err)
	}
	info, err := a.Inspect()
	if err != nil {
		return fmt.Errorf("Error inspecting snapshot: %s: %w", c.File, err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, " ID\t%s\n Size\t%d\n Index\t%d\n Term\t%d\n Version\t%d\n\n", info.ID, info.Size, info.Index, info.Term, info.Version)
	fmt.Fprintln(tw, " Type\tCount")
	fmt.Fprintln(tw, " ----\t----")
	for _, t := range info.Tables {
		fmt.Fprintf(tw, " %s\t%d\n", t.Name, t.Count)
	}
	return tw.Flush()
}

func readSnapshotFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("Error opening snapshot file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSnapshotFile+1))
	if err != nil {
		return nil, fmt.Errorf("Error reading snapshot file: %w", err)
	}
	if len(b) > maxSnapshotFile {
		return nil, fmt.Errorf("Error reading snapshot file: %s is larger than %d bytes", path, maxSnapshotFile)
	}
	return b, nil
}
