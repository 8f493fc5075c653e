package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// EventCmd is `cairn event`: fire a user event through the servers'
// gossip to every agent whose filters match.
type EventCmd struct {
	Name    string `required:"" help:"Event name."`
	Node    string `help:"Regular expression: only nodes whose name matches."`
	Service string `help:"Regular expression: only nodes with a matching service."`
	Tag     string `help:"Regular expression: only nodes with a matching service tag (needs --service)."`
	Payload string `arg:"" optional:"" help:"Event payload."`
}

func (c *EventCmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	return c.run(ctx, newAPIClient(g), g.stdout())
}

func (c *EventCmd) run(ctx context.Context, api *apiClient, stdout io.Writer) error {
	if c.Tag != "" && c.Service == "" {
		return fail(1, "Cannot provide tag filter without service filter.")
	}
	id, err := fireEvent(ctx, api, c.Name, c.Node, c.Service, c.Tag, []byte(c.Payload))
	if err != nil {
		return fail(1, "Error firing event: %v", err)
	}
	fmt.Fprintf(stdout, "Event ID: %s\n", id)
	return nil
}

// fireEvent fires a user event and returns its ID.
func fireEvent(ctx context.Context, api *apiClient, name, node, service, tag string, payload []byte) (string, error) {
	q := url.Values{}
	for k, v := range map[string]string{"node": node, "service": service, "tag": tag} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var body io.Reader
	if len(payload) > 0 {
		body = strings.NewReader(string(payload))
	}
	b, _, err := api.do(ctx, http.MethodPut, "/v1/event/fire/"+url.PathEscape(name), q, body)
	if err != nil {
		return "", err
	}
	var ev struct{ ID string }
	if err := jsonUnmarshal(b, &ev); err != nil {
		return "", err
	}
	return ev.ID, nil
}
