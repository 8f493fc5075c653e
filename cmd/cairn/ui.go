package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
)

// UICmd is `cairn ui`: print the web UI's URL for the configured agent,
// and open it in a browser when the host has one (xdg-open and a
// display), as `consul ui` does.
type UICmd struct {
	PrintOnly bool `name:"print-only" help:"Print the URL; do not open a browser."`
}

func (c *UICmd) Run(g *Globals) error {
	ctx, cancel := cmdContext()
	defer cancel()
	open := ""
	if !c.PrintOnly {
		open = browserCommand(os.Getenv, exec.LookPath)
	}
	return c.run(ctx, newAPIClient(g), g.stdout(), open)
}

// run checks that the agent serves the UI, prints its URL and, when open
// names a command, runs it with the URL. The check fetches the UI's
// stylesheet: it answers whenever the UI is on, whatever the cluster's
// state (a page needs a server).
func (c *UICmd) run(ctx context.Context, api *apiClient, stdout io.Writer, open string) error {
	url := api.base + "/ui/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"static/app.css", nil)
	if err != nil {
		return fail(1, "Error: %v", err)
	}
	resp, err := api.hc.Do(req)
	if err != nil {
		return fail(1, "Error connecting to Cairn agent: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return fail(1, "The agent at %s does not serve the UI: start it with --ui (or ui_config { enabled = true })", api.base)
	}
	if resp.StatusCode/100 != 2 {
		return fail(1, "Unexpected response code from %s: %d", req.URL, resp.StatusCode)
	}
	fmt.Fprintln(stdout, url)
	if open == "" {
		return nil
	}
	if err := exec.CommandContext(ctx, open, url).Run(); err != nil {
		return fail(1, "Error opening a browser with %s: %v", open, err)
	}
	return nil
}

// browserCommand is the command that opens a URL on this host, or ""
// when there is no graphical session to open it in (a server over ssh,
// a test): the URL is then only printed.
func browserCommand(getenv func(string) string, lookPath func(string) (string, error)) string {
	if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
		return ""
	}
	p, err := lookPath("xdg-open")
	if err != nil {
		return ""
	}
	return p
}
