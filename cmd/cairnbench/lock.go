package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"time"

	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/structs"
)

var lockContenders = flag.Int("contenders", 8, "contenders for one lock (lock)")

func init() {
	register("lock", "3-server cluster: --contenders sessions hand one KV lock over (acquire, release) through the leader's RPC port", runLock)
}

// lockPollWait bounds one blocking read of the lock key while waiting.
const lockPollWait = 2 * time.Second

// runLock measures lock handovers: each contender acquires the lock
// (waiting on a blocking read of the key while another holds it), then
// releases it; one acquire+release is one handover.
func runLock(ctx context.Context, o *Options) error {
	n := *lockContenders
	if n < 1 || n > 1024 {
		return fmt.Errorf("--contenders must be in [1, 1024]")
	}
	c, leader, err := startBenchCluster(ctx, o)
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := rpc.Dial(ctx, leader.rpcAddr(), rpc.DialOptions{})
	if err != nil {
		return err
	}
	defer s.Close()

	// Sessions without checks on the leader's node (registered by the
	// leader itself shortly after its election).
	ids := make([]string, n)
	for w := range ids {
		ids[w] = benchUUID()
		req := &structs.SessionRequest{Datacenter: "dc1", Op: structs.SessionCreate,
			Session: structs.Session{ID: ids[w], Node: leader.name, NodeChecks: []string{}, LockDelay: 0}}
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := s.Call(ctx, structs.MethodSessionApply, req, &structs.WriteResponse{})
			if err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("create session: %w", err)
			}
			time.Sleep(200 * time.Millisecond) // the leader registers its node
		}
	}
	const key = "bench/lock"
	logf("lock: %d contenders for %v", n, o.Duration)
	p, err := measure(ctx, o, c, leader, "lock_handovers", n, func(ctx context.Context, w, _ int) error {
		lock := &structs.KVSRequest{Datacenter: "dc1", Op: structs.KVLock, DirEnt: structs.DirEntry{Key: key, Session: ids[w]}}
		var index uint64
		for {
			var r structs.WriteResponse
			if err := s.Call(ctx, structs.MethodKVSApply, lock, &r); err != nil {
				return err
			}
			if r.Success {
				break
			}
			// Held: wait until it is free, then try again.
			for {
				var out structs.IndexedDirEntries
				q := structs.KeyRequest{Datacenter: "dc1", Key: key,
					QueryOptions: structs.QueryOptions{MinQueryIndex: index, MaxQueryTime: lockPollWait}}
				if err := s.Call(ctx, structs.MethodKVSGet, &q, &out); err != nil {
					return err
				}
				index = out.Index
				if len(out.Entries) == 0 || out.Entries[0].Session == "" {
					break
				}
			}
		}
		unlock := *lock
		unlock.Op = structs.KVUnlock
		return s.Call(ctx, structs.MethodKVSApply, &unlock, &structs.WriteResponse{})
	})
	if err != nil {
		return err
	}
	result("lock_handovers_per_s=%.0f contenders=%d p50_ms=%.2f p99_ms=%.2f", p.opsPerSec(), n, p.pct(0.50), p.pct(0.99))
	return nil
}

// benchUUID returns a random UUID for a session ID.
func benchUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
