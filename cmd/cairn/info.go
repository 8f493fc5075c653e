package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
)

// InfoCmd is `cairn info`: the agent's stats, Consul's layout.
type InfoCmd struct{}

func (c *InfoCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdout())
}

func (c *InfoCmd) run(ctx context.Context, api *apiClient, stdout io.Writer) error {
	var self struct {
		Stats map[string]map[string]string
	}
	if _, err := api.getJSON(ctx, "/v1/agent/self", nil, &self); err != nil {
		return fail(1, "Error querying agent: %v", err)
	}
	sections := make([]string, 0, len(self.Stats))
	for s := range self.Stats {
		sections = append(sections, s)
	}
	sort.Strings(sections)
	for _, s := range sections {
		fmt.Fprintf(stdout, "%s:\n", s)
		keys := make([]string, 0, len(self.Stats[s]))
		for k := range self.Stats[s] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(stdout, "\t%s = %s\n", k, self.Stats[s][k])
		}
	}
	return nil
}

// ReloadCmd is `cairn reload`: re-read the agent's config files. A bad
// file leaves the running configuration in place and makes this exit 1.
type ReloadCmd struct{}

func (c *ReloadCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	if _, _, err := newAPIClient(g).do(ctx, http.MethodPut, "/v1/agent/reload", nil, nil); err != nil {
		return fail(1, "Error reloading: %v", err)
	}
	fmt.Fprintln(g.stdout(), "Configuration reload triggered")
	return nil
}

func jsonUnmarshal(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode agent response: %w", err)
	}
	return nil
}
