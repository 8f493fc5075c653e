package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

// TestTransferLeader: through a follower (forwarded to the leader),
// leadership moves to the named voter, then to whichever voter raft
// picks; unknown and current-leader targets are refused and change
// nothing; writes work after each transfer.
func TestTransferLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-server test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all := threeServers(t, nil)
	l := leaderOf(all...)
	var follower, target *Server
	for _, s := range all {
		switch {
		case s == l:
		case follower == nil:
			follower = s
		default:
			target = s
		}
	}
	var out structs.TransferLeaderResponse
	for _, tc := range []struct {
		id, err string
	}{
		{"nope", `id "nope" was not found`},
		{l.cfg.NodeName, "is already the leader"},
	} {
		err := follower.RPC(ctx, structs.MethodOperatorRaftTransferLeader, &structs.RaftTransferLeaderRequest{ID: tc.id}, &out)
		if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, structs.ErrInvalidRequest) {
			t.Fatalf("transfer to %q: %v, want %q", tc.id, err, tc.err)
		}
		if !l.IsLeader() {
			t.Fatalf("a refused transfer to %q moved leadership", tc.id)
		}
	}
	waitLeader := func(want func(*Server) bool, what string) *Server {
		var now *Server
		testutil.Eventually(t, 20*time.Second, what, func() error {
			now = leaderOf(all...)
			if now == nil || !want(now) {
				return fmt.Errorf("leader %v", now)
			}
			return nil
		})
		return now
	}
	out = structs.TransferLeaderResponse{}
	if err := follower.RPC(ctx, structs.MethodOperatorRaftTransferLeader, &structs.RaftTransferLeaderRequest{ID: target.cfg.NodeName}, &out); err != nil || !out.Success {
		t.Fatalf("transfer to %s: %+v, %v", target.cfg.NodeName, out, err)
	}
	waitLeader(func(s *Server) bool { return s == target }, target.cfg.NodeName+" to lead")
	if err := kvPut(ctx, follower, "after", "first-transfer"); err != nil {
		t.Fatal(err)
	}
	out = structs.TransferLeaderResponse{}
	if err := l.RPC(ctx, structs.MethodOperatorRaftTransferLeader, &structs.RaftTransferLeaderRequest{}, &out); err != nil || !out.Success {
		t.Fatalf("transfer to any: %+v, %v", out, err)
	}
	waitLeader(func(s *Server) bool { return s != target }, "leadership to leave "+target.cfg.NodeName)
	if err := kvPut(ctx, target, "after", "second-transfer"); err != nil {
		t.Fatal(err)
	}
}
