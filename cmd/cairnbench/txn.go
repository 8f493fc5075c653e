package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

func init() {
	register("txn", "3-server cluster: PUT /v1/txn of 8 KV sets each against the leader's HTTP API", runTxn)
}

// txnOpsPerTxn is the size of each benchmark transaction: the issue's
// figure, a typical multi-key config update.
const txnOpsPerTxn = 8

func runTxn(ctx context.Context, o *Options) error {
	c, leader, err := startBenchCluster(ctx, o)
	if err != nil {
		return err
	}
	defer c.Close()
	base := "http://" + leader.httpAddr()
	logf("leader is %s (http %s)", leader.name, base)
	hc := benchHTTPClient(o)
	defer hc.CloseIdleConnections()
	// "dmFsdWU=" is "value": each client rewrites its own 8 keys, so the
	// transactions never conflict and the figure is Raft's, not retries'.
	body := func(w, i int) []byte {
		ops := make([]string, txnOpsPerTxn)
		for k := range ops {
			ops[k] = fmt.Sprintf(`{"KV":{"Verb":"set","Key":"tbench/%d/%d","Value":"dmFsdWU=","Flags":%d}}`, w, k, i)
		}
		return []byte("[" + strings.Join(ops, ",") + "]")
	}
	logf("txn: %d clients for %v, %d ops per txn", o.Concurrency, o.Duration, txnOpsPerTxn)
	p, err := measure(ctx, o, c, leader, "txn", o.Concurrency, func(ctx context.Context, w, i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/v1/txn", bytes.NewReader(body(w, i)))
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("PUT /v1/txn: %s: %s", resp.Status, strings.TrimSpace(string(b)))
		}
		return nil
	})
	if err != nil {
		return err
	}
	result("txn_ops_per_s=%.0f ops_per_txn=%d txns_per_s=%.0f concurrency=%d p50_ms=%.2f p99_ms=%.2f",
		p.opsPerSec()*txnOpsPerTxn, txnOpsPerTxn, p.opsPerSec(), o.Concurrency, p.pct(0.50), p.pct(0.99))
	return nil
}
