package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

// TestFollowersLearnCommitsWhenWritesPause: with Raft's own commit timer
// out of the way (an hour), each of a few isolated writes still reaches
// every follower's state: the leader's barrier after the writes pause
// carries their commit. Without it the last write would wait the hour
// (a 50–100 ms staleness with Raft's default, seen by every client agent
// attached to a follower).
func TestFollowersLearnCommitsWhenWritesPause(t *testing.T) {
	all := threeServers(t, func(c *Config) { c.RaftCommitTimeout = time.Hour })
	leader := leaderOf(all...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 3 {
		key := fmt.Sprintf("nudge/%d", i)
		var w structs.WriteResponse
		if err := leader.RPC(ctx, structs.MethodKVSApply, &structs.KVSRequest{Op: structs.KVSet, DirEnt: structs.DirEntry{Key: key, Value: []byte("v")}}, &w); err != nil {
			t.Fatalf("write %s: %v", key, err)
		}
		testutil.Eventually(t, 10*time.Second, key+" applied on every follower", func() error {
			for _, s := range all {
				if _, e := s.fsm.State().KVSGet(key); e == nil {
					return fmt.Errorf("%s has not applied it", s.cfg.NodeName)
				}
			}
			return nil
		})
	}
}
