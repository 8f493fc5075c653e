package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

func init() {
	register("http", "3-server cluster: PUT /v1/catalog/register and GET /v1/kv/<key> against the leader's HTTP API", runHTTP)
}

// benchHTTPClient is the benchmark clients' HTTP client: one keep-alive
// pool big enough for every one of o.Concurrency clients.
func benchHTTPClient(o *Options) *http.Client {
	tr := &http.Transport{
		MaxIdleConns:        o.Concurrency * 2,
		MaxIdleConnsPerHost: o.Concurrency * 2,
		IdleConnTimeout:     time.Minute,
	}
	return &http.Client{Transport: tr, Timeout: opTimeout}
}

func runHTTP(ctx context.Context, o *Options) error {
	c, leader, err := startBenchCluster(ctx, o)
	if err != nil {
		return err
	}
	defer c.Close()
	base := "http://" + leader.httpAddr()
	logf("leader is %s (http %s)", leader.name, base)

	hc := benchHTTPClient(o)
	defer hc.CloseIdleConnections()
	do := func(ctx context.Context, method, url string, body []byte, want int) error {
		req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20)) // drain: keep the conn reusable
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(b)))
		}
		return nil
	}

	// PUT /v1/catalog/register: each client owns a node, 64 services on it.
	logf("http register: %d clients for %v", o.Concurrency, o.Duration)
	p, err := measure(ctx, o, c, leader, "http_register", o.Concurrency, func(ctx context.Context, w, i int) error {
		body := fmt.Appendf(nil, `{"Node":"hbench-%d","Address":"10.1.%d.%d","Service":{"ID":"svc-%d","Service":"hbench","Port":%d,"Tags":["bench"]}}`,
			w, w>>8&255, w&255, i%64, 1024+i%64)
		return do(ctx, http.MethodPut, base+"/v1/catalog/register", body, http.StatusOK)
	})
	if err != nil {
		return err
	}
	result("http_register_ops_per_s=%.0f concurrency=%d p50_ms=%.2f p99_ms=%.2f", p.opsPerSec(), o.Concurrency, p.pct(0.50), p.pct(0.99))

	// GET /v1/kv/<key> (default consistency: the leader answers) over 64 keys.
	const nkeys = 64
	value := []byte(strings.Repeat("v", 128))
	for k := range nkeys {
		if err := do(ctx, http.MethodPut, fmt.Sprintf("%s/v1/kv/hbench/%d", base, k), value, http.StatusOK); err != nil {
			return err
		}
	}
	logf("http kv get: %d clients for %v", o.Concurrency, o.Duration)
	p, err = measure(ctx, o, c, leader, "http_kv_get", o.Concurrency, func(ctx context.Context, w, i int) error {
		return do(ctx, http.MethodGet, fmt.Sprintf("%s/v1/kv/hbench/%d", base, (w+i)%nkeys), nil, http.StatusOK)
	})
	if err != nil {
		return err
	}
	result("http_kv_get_p99_ms=%.2f ops_per_s=%.0f concurrency=%d p50_ms=%.2f", p.pct(0.99), p.opsPerSec(), o.Concurrency, p.pct(0.50))
	return nil
}
