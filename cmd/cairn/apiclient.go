package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cairnd/cairn/cluster/tlsconf"
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
	base string // scheme://host:port
	hc   *http.Client
	err  error // a bad TLS flag: every request fails with it
}

func newAPIClient(g *Globals) *apiClient {
	addr := g.HTTPAddr
	if !strings.Contains(addr, "://") {
		scheme := "http://"
		if g.HTTPSSL {
			scheme = "https://"
		}
		addr = scheme + addr
	}
	c := &apiClient{base: strings.TrimRight(addr, "/"), hc: &http.Client{Timeout: apiTimeout}}
	if strings.HasPrefix(c.base, "https://") {
		tc, err := g.clientTLS()
		if err != nil {
			c.err = err
			return c
		}
		c.hc.Transport = &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}
	}
	return c
}

// clientTLS is the TLS configuration the flags describe.
func (g *Globals) clientTLS() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: g.TLSServerName, InsecureSkipVerify: !g.HTTPSSLVerify}
	if g.CAFile != "" || g.CAPath != "" {
		pool, err := tlsconf.LoadCAs(g.CAFile, g.CAPath)
		if err != nil {
			return nil, fmt.Errorf("--ca-file/--ca-path: %w", err)
		}
		tc.RootCAs = pool
	}
	if (g.ClientCert == "") != (g.ClientKey == "") {
		return nil, errors.New("--client-cert and --client-key go together")
	}
	if g.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(g.ClientCert, g.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("--client-cert: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
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
	if c.err != nil {
		return nil, 0, c.err
	}
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, 0, err
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
