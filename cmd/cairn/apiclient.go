package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	// apiTimeout bounds one CLI request: the agent is local, so anything
	// slower means it is wedged, and the operator should hear so.
	apiTimeout = 30 * time.Second
	// maxAPIResponse bounds what the CLI reads from the agent (a full
	// catalog of a large datacenter fits comfortably).
	maxAPIResponse = 64 << 20
)

// apiClient is the CLI's tiny client of the local agent's HTTP API.
type apiClient struct {
	base  string // scheme://host:port
	hc    *http.Client
	token string // ACL secret, sent as X-Consul-Token
}

func newAPIClient(g *Globals) *apiClient {
	addr := g.HTTPAddr
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return &apiClient{base: strings.TrimRight(addr, "/"), hc: &http.Client{Timeout: apiTimeout}, token: g.Token}
}

// apiError is a non-2xx answer from the agent.
type apiError struct {
	Status int
	Body   string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("Unexpected response code: %d (%s)", e.Status, e.Body)
}

// do sends one request. A 404 on GET is returned as (nil body, 404, nil)
// so callers can say "no such key"; other non-2xx answers are *apiError.
func (c *apiClient) do(ctx context.Context, method, path string, q url.Values, body io.Reader) ([]byte, int, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, 0, err
	}
	if c.token != "" {
		req.Header.Set("X-Consul-Token", c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("Error connecting to Cairn agent: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponse))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("read response: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && method == http.MethodGet:
		return nil, resp.StatusCode, nil
	case resp.StatusCode/100 != 2:
		return nil, resp.StatusCode, &apiError{Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	return b, resp.StatusCode, nil
}

// getJSON GETs path into out; found is false on 404.
func (c *apiClient) getJSON(ctx context.Context, path string, q url.Values, out any) (found bool, err error) {
	b, code, err := c.do(ctx, http.MethodGet, path, q, nil)
	if err != nil || code == http.StatusNotFound {
		return false, err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return true, fmt.Errorf("decode %s: %w", path, err)
	}
	return true, nil
}

// cmdContext is the context of one CLI command.
func cmdContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), apiTimeout)
}
