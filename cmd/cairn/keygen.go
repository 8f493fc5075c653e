package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"

	agenthttp "github.com/cairnd/cairn/agent/http"
	"github.com/cairnd/cairn/cluster/gossip"
)

// KeygenCmd is `cairn keygen`: a new random gossip encryption key.
type KeygenCmd struct{}

func (KeygenCmd) Run(g *Globals) error {
	fmt.Fprintln(g.stdout(), gossip.NewKey())
	return nil
}

// KeyringCmd is `cairn keyring`: manage the gossip keyring of every
// member at once (exactly one operation per call).
type KeyringCmd struct {
	Install string `placeholder:"KEY" help:"Install a new key on every member." xor:"op"`
	Use     string `placeholder:"KEY" help:"Make an installed key the one used to encrypt." xor:"op"`
	Remove  string `placeholder:"KEY" help:"Remove a key from every member (not the primary one)." xor:"op"`
	List    bool   `help:"List the installed keys and how many members have each." xor:"op"`
}

func (c *KeyringCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdout())
}

func (c *KeyringCmd) run(ctx context.Context, api *apiClient, stdout io.Writer) error {
	var method, key, doing, errWhat string
	switch {
	case c.List:
		fmt.Fprintln(stdout, "==> Gathering installed encryption keys...")
		var pools []agenthttp.KeyringResponse
		if _, err := api.getJSON(ctx, "/v1/operator/keyring", nil, &pools); err != nil {
			return fail(1, "error: %v", err)
		}
		for _, p := range pools {
			if p.WAN {
				fmt.Fprintf(stdout, "\nWAN:\n")
			} else {
				fmt.Fprintf(stdout, "\n%s (LAN):\n", p.Datacenter)
			}
			keys := make([]string, 0, len(p.Keys))
			for k := range p.Keys {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(stdout, "  %s [%d/%d]\n", k, p.Keys[k], p.NumNodes)
			}
		}
		return nil
	case c.Install != "":
		method, key, doing, errWhat = http.MethodPost, c.Install, "Installing new gossip encryption key...", "install"
	case c.Use != "":
		method, key, doing, errWhat = http.MethodPut, c.Use, "Changing primary gossip encryption key...", "use"
	case c.Remove != "":
		method, key, doing, errWhat = http.MethodDelete, c.Remove, "Removing gossip encryption key...", "remove"
	default:
		return fail(1, "Exactly one of --list, --install, --use or --remove is required.")
	}
	fmt.Fprintln(stdout, "==> "+doing)
	body, _ := json.Marshal(map[string]string{"Key": key})
	if _, _, err := api.do(ctx, method, "/v1/operator/keyring", nil, bytes.NewReader(body)); err != nil {
		return fail(1, "error: %s: %v", errWhat, err)
	}
	return nil
}
