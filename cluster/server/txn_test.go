package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

func kvOp(verb structs.KVOp, key, value string, index uint64) structs.TxnOp {
	return structs.TxnOp{KV: &structs.TxnKVOp{Verb: verb, DirEnt: structs.DirEntry{Key: key, Value: []byte(value), ModifyIndex: index}}}
}

// TestTxnAndTombstonesAcrossServers: a transaction sent to a follower is
// applied once, by the leader, on every replica; a failing one changes no
// replica; a deleted key's tombstone reaches every replica, reports the
// delete's index there, and is reaped on every replica after the TTL by
// the leader's index-bounded reap entry.
func TestTxnAndTombstonesAcrossServers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	all := threeServers(t, func(c *Config) { c.TombstoneTTL = 300 * time.Millisecond })
	leader := leaderOf(all...)
	var follower *Server
	for _, s := range all {
		if s != leader {
			follower = s
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var ok structs.TxnResponse
	if err := follower.RPC(ctx, structs.MethodTxnApply, &structs.TxnRequest{Ops: []structs.TxnOp{
		kvOp(structs.KVSet, "app/a", "1", 0),
		kvOp(structs.KVSet, "app/b", "2", 0),
		kvOp(structs.KVCheckNotExists, "app/c", "", 0),
	}}, &ok); err != nil {
		t.Fatal(err)
	}
	if len(ok.Errors) != 0 || len(ok.Results) != 2 {
		t.Fatalf("txn via follower: %+v", ok)
	}
	setIdx := ok.Results[0].KV.ModifyIndex

	var bad structs.TxnResponse
	if err := follower.RPC(ctx, structs.MethodTxnApply, &structs.TxnRequest{Ops: []structs.TxnOp{
		kvOp(structs.KVDelete, "app/a", "", 0),
		kvOp(structs.KVCheckIndex, "app/b", "", setIdx+100),
	}}, &bad); err != nil {
		t.Fatal(err)
	}
	if len(bad.Errors) != 1 || bad.Errors[0].OpIndex != 1 || bad.Results != nil {
		t.Fatalf("failing txn: %+v", bad)
	}

	var del structs.WriteResponse
	if err := leader.RPC(ctx, structs.MethodKVSApply, &structs.KVSRequest{Op: structs.KVDelete, DirEnt: structs.DirEntry{Key: "app/a"}}, &del); err != nil {
		t.Fatal(err)
	}
	// Every replica: app/b untouched by the failed txn, app/a's tombstone
	// at the delete's index, then reaped.
	testutil.Eventually(t, 10*time.Second, "replicas applied the delete", func() error {
		for _, s := range all {
			if idx, e := s.State().KVSGet("app/b"); e == nil || e.ModifyIndex != setIdx || idx != setIdx {
				return fmt.Errorf("%s: app/b %+v at %d", s.cfg.NodeName, e, idx)
			}
			if idx, e := s.State().KVSGet("app/a"); e != nil || idx != del.Index {
				return fmt.Errorf("%s: app/a %+v at %d, want gone at %d", s.cfg.NodeName, e, idx, del.Index)
			}
		}
		return nil
	})
	testutil.Eventually(t, 15*time.Second, "tombstones reaped on every replica", func() error {
		for _, s := range all {
			if n := s.State().Tombstones(); n != 0 {
				return fmt.Errorf("%s holds %d tombstones", s.cfg.NodeName, n)
			}
		}
		return nil
	})
	for _, s := range all {
		if idx, _ := s.State().KVSGet("app/a"); idx < del.Index {
			t.Errorf("%s: app/a's index went back to %d after the reap (deleted at %d)", s.cfg.NodeName, idx, del.Index)
		}
	}
}
