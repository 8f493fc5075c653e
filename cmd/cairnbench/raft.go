package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/structs"
)

func init() {
	register("raft", "3-server cluster: concurrent catalog registrations and KV puts over the server RPC port to the leader", runRaft)
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

	nsess := (o.Writers + writersPerSession - 1) / writersPerSession
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
	logf("raft register: %d writers for %v", o.Writers, o.Duration)
	p, err := measure(ctx, o, c, leader, "raft_register", o.Writers, func(ctx context.Context, w, i int) error {
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
	})
	if err != nil {
		return err
	}
	result("raft_register_ops_per_s=%.0f writers=%d p50_ms=%.2f p99_ms=%.2f", p.opsPerSec(), o.Writers, p.pct(0.50), p.pct(0.99))

	// KV puts: each writer cycles through 64 keys of its own, 128-byte values.
	value := []byte(strings.Repeat("v", 128))
	logf("raft kv put: %d writers for %v", o.Writers, o.Duration)
	p, err = measure(ctx, o, c, leader, "raft_kv_put", o.Writers, func(ctx context.Context, w, i int) error {
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
