package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/structs"
)

// raftFlags: the writer counts of the registration curve and the runs
// per point (the printed figures are the medians of the runs, so one
// noisy run on a shared machine does not swing the line).
var raftFlags struct {
	curve  string
	repeat int
}

func init() {
	register("raft", "3-server cluster: concurrent catalog registrations (a curve over --raft-writers, median of --raft-repeat runs each) and KV puts over the server RPC port to the leader", runRaft)
	flag.StringVar(&raftFlags.curve, "raft-writers", "", "raft: comma-separated writer counts of the registration curve (default: --writers alone)")
	flag.IntVar(&raftFlags.repeat, "raft-repeat", 1, "raft: runs per registration point; the line prints the medians (1..9)")
}

// writerCurve parses --raft-writers (default: the one --writers count).
func writerCurve(s string, def int) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return []int{def}, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 4096 {
			return nil, fmt.Errorf("--raft-writers: %q is not a writer count in [1, 4096]", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// median is the middle value of xs (the mean of the two middle ones for
// an even count); xs is sorted in place.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// writersPerSession is how many writers share one multiplexed RPC session.
const writersPerSession = 16

func runRaft(ctx context.Context, o *Options) error {
	c, leader, err := startBenchCluster(ctx, o)
	if err != nil {
		return err
	}
	defer c.Close()
	logf("leader is %s (rpc %s, http %s)", leader.name, leader.rpcAddr(), leader.httpAddr())

	curve, err := writerCurve(raftFlags.curve, o.Writers)
	if err != nil {
		return err
	}
	if raftFlags.repeat < 1 || raftFlags.repeat > 9 {
		return fmt.Errorf("--raft-repeat must be in [1, 9]")
	}
	nsess := (max(o.Writers, slices.Max(curve)) + writersPerSession - 1) / writersPerSession
	sessions := make([]*rpc.Session, 0, nsess)
	defer func() {
		for _, s := range sessions {
			s.Close()
		}
	}()
	for range nsess {
		s, err := rpc.Dial(ctx, leader.rpcAddr(), rpc.DialOptions{})
		if err != nil {
			return err
		}
		sessions = append(sessions, s)
	}
	sess := func(w int) *rpc.Session { return sessions[w/writersPerSession] }

	// Catalog registrations: each writer owns one node and cycles through
	// 64 service IDs on it, so the catalog stays bounded.
	registerOp := func(ctx context.Context, w, i int) error {
		req := &structs.RegisterRequest{
			Datacenter: "dc1",
			Node:       fmt.Sprintf("bench-%d", w),
			Address:    fmt.Sprintf("10.%d.%d.%d", w>>16&255, w>>8&255, w&255),
			Service: &structs.NodeService{
				ID:      fmt.Sprintf("svc-%d", i%64),
				Service: "bench",
				Port:    1024 + i%64,
				Tags:    []string{"bench"},
			},
		}
		return sess(w).Call(ctx, structs.MethodCatalogRegister, req, &structs.WriteResponse{})
	}
	for _, writers := range curve {
		var ops, p50, p99 []float64
		for run := range raftFlags.repeat {
			logf("raft register: %d writers for %v (run %d of %d)", writers, o.Duration, run+1, raftFlags.repeat)
			p, err := measure(ctx, o, c, leader, "raft_register", writers, registerOp)
			if err != nil {
				return err
			}
			ops, p50, p99 = append(ops, p.opsPerSec()), append(p50, p.pct(0.50)), append(p99, p.pct(0.99))
		}
		lo, hi := slices.Min(ops), slices.Max(ops)
		result("raft_register_ops_per_s=%.0f writers=%d p50_ms=%.2f p99_ms=%.2f runs=%d min=%.0f max=%.0f", median(ops), writers, median(p50), median(p99), len(ops), lo, hi)
	}

	// KV puts: each writer cycles through 64 keys of its own, 128-byte values.
	value := []byte(strings.Repeat("v", 128))
	logf("raft kv put: %d writers for %v", o.Writers, o.Duration)
	p, err := measure(ctx, o, c, leader, "raft_kv_put", o.Writers, func(ctx context.Context, w, i int) error {
		req := &structs.KVSRequest{
			Datacenter: "dc1",
			Op:         structs.KVSet,
			DirEnt:     structs.DirEntry{Key: fmt.Sprintf("bench/%d/%d", w, i%64), Value: value},
		}
		return sess(w).Call(ctx, structs.MethodKVSApply, req, &structs.WriteResponse{})
	})
	if err != nil {
		return err
	}
	result("raft_kv_put_ops_per_s=%.0f writers=%d p50_ms=%.2f p99_ms=%.2f", p.opsPerSec(), o.Writers, p.pct(0.50), p.pct(0.99))
	return nil
}
