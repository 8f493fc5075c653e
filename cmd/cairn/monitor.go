package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/signal"
	"strings"
	"syscall"
)

// MonitorCmd is `cairn monitor`: stream the agent's log until interrupted.
type MonitorCmd struct {
	LogLevel string `name:"log-level" default:"info" help:"Lowest level to show: debug, info, warn or error."`
}

func (c *MonitorCmd) Run(g *Globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return c.run(ctx, newAPIClient(g), g.stdout())
}

func (c *MonitorCmd) run(ctx context.Context, api *apiClient, stdout io.Writer) error {
	q := url.Values{"loglevel": {c.LogLevel}}
	resp, err := api.stream(ctx, "/v1/agent/monitor", q)
	if err != nil {
		return fail(1, "Error starting monitor: %v", err)
	}
	defer resp.Body.Close()
	_, err = io.Copy(stdout, resp.Body)
	if ctx.Err() != nil {
		return nil // interrupted: the normal way to stop
	}
	if err != nil {
		return fail(1, "Error reading logs: %v", err)
	}
	return fail(1, "Remote side ended the monitor! This usually means that the\nremote side has exited or crashed.")
}

// stream starts a long-lived GET (no overall timeout: ctx ends it) and
// returns the response once the agent answered 2xx.
func (c *apiClient) stream(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	resp, err := c.rawGet(ctx, path, q)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, &apiError{Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	return resp, nil
}

// rawGet sends a GET with no overall timeout and returns any response.
func (c *apiClient) rawGet(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: c.hc.Transport}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("Error connecting to Cairn agent: %w", err)
	}
	return resp, nil
}
