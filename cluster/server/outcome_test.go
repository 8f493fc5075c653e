package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
	"github.com/hashicorp/raft"
)

// TestApplyErrorClassification pins which raft.Apply failures may be sent
// to Raft again (ErrNotLeader: never left this server), which are definite
// failures, and which leave the outcome unknown.
func TestApplyErrorClassification(t *testing.T) {
	type want int
	const (
		retry want = iota
		definite
		unknown
	)
	for _, tc := range []struct {
		name       string
		err        error
		dispatched bool
		want       want
	}{
		{"not leader before dispatch", raft.ErrNotLeader, false, retry},
		{"leadership transfer before dispatch", raft.ErrLeadershipTransferInProgress, false, retry},
		{"enqueue timeout", raft.ErrEnqueueTimeout, false, definite},
		{"shutdown before enqueue", raft.ErrRaftShutdown, false, definite},
		{"leadership lost after dispatch", raft.ErrLeadershipLost, true, unknown},
		{"shutdown after dispatch", raft.ErrRaftShutdown, true, unknown},
		{"log store failure after dispatch", errors.New("pebble: disk full"), true, unknown},
		{"not leader after dispatch", raft.ErrNotLeader, true, unknown},
		{"aborted by snapshot restore", raft.ErrAbortedByRestore, true, definite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := applyError(tc.err, tc.dispatched)
			if !errors.Is(err, tc.err) {
				t.Errorf("%v does not wrap raft's %v", err, tc.err)
			}
			notLeader := errors.Is(err, structs.ErrNotLeader)
			unknownOutcome := errors.Is(err, structs.ErrWriteOutcomeUnknown)
			var got want
			switch {
			case notLeader && !unknownOutcome:
				got = retry
			case unknownOutcome && !notLeader:
				got = unknown
			case !notLeader && !unknownOutcome:
				got = definite
			default:
				t.Fatalf("%v is both not-leader and outcome-unknown", err)
			}
			if got != tc.want {
				t.Errorf("applyError(%v, dispatched=%v) = %v: class %d, want %d", tc.err, tc.dispatched, err, got, tc.want)
			}
		})
	}
}

// TestHopClassification pins what forward does after a failed call to the
// leader: a write is retried only if it never left; reads are retried on
// any failure on the way.
func TestHopClassification(t *testing.T) {
	dial := &dialError{fmt.Errorf("server: dial x: %w", errors.New("connection refused"))}
	unsent := &rpc.TransportError{Method: "KVS.Apply", MaybeSent: false, Err: io.EOF}
	sent := &rpc.TransportError{Method: "KVS.Apply", MaybeSent: true, Err: io.EOF}
	changedBefore := &leaderChangedError{leader: "a", err: errLeaderChanged}
	changedDuring := &leaderChangedError{leader: "a", maybeSent: true, err: fmt.Errorf("rpc: KVS.Apply: %w", context.Canceled)}
	remoteUnknown := structs.ErrorFromString(structs.ErrWriteOutcomeUnknown.Error() + ": leadership lost while committing log")
	for _, tc := range []struct {
		name        string
		err         error
		write, read hopOutcome
	}{
		{"success", nil, hopDone, hopDone},
		{"dial failed", dial, hopRetry, hopRetry},
		{"transport failed before sending", unsent, hopRetry, hopRetry},
		{"transport failed after sending", sent, hopOutcomeUnknown, hopRetry},
		{"leader changed before the call", changedBefore, hopRetry, hopRetry},
		{"leader changed during the call", changedDuring, hopOutcomeUnknown, hopRetry},
		{"caller cancelled mid-call", fmt.Errorf("rpc: KVS.Apply: %w", context.Canceled), hopOutcomeUnknown, hopDone},
		{"caller deadline mid-call", fmt.Errorf("rpc: KVS.Apply: %w", context.DeadlineExceeded), hopOutcomeUnknown, hopDone},
		{"leader says outcome unknown", remoteUnknown, hopDone, hopDone},
		{"leader says not leader", structs.ErrNotLeader, hopDone, hopRetry},
		{"no leader", structs.ErrNoLeader, hopDone, hopDone},
		{"FSM rejection", structs.ErrMissingNode, hopDone, hopDone},
		{"remote handler error", rpc.RemoteError{Msg: "missing key"}, hopDone, hopDone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classifyHop(tc.err, false); got != tc.write {
				t.Errorf("write: classifyHop(%v) = %d, want %d", tc.err, got, tc.write)
			}
			if got := classifyHop(tc.err, true); got != tc.read {
				t.Errorf("read: classifyHop(%v) = %d, want %d", tc.err, got, tc.read)
			}
		})
	}
}

// TestCallToLeaderEndsWhenLeaderChanges: a call a follower forwarded to
// the leader (here a blocking read the leader would hold for a minute)
// ends as soon as raft on the follower names another leader, not when the
// old leader answers or a timeout passes.
func TestCallToLeaderEndsWhenLeaderChanges(t *testing.T) {
	all := threeServers(t, nil)
	old := leaderOf(all...)
	var f *Server
	testutil.Eventually(t, 10*time.Second, "a follower that knows the leader", func() error {
		for _, s := range all {
			if s != old && s.Leader() == old.RPCAddr() {
				f = s
				return nil
			}
		}
		return errors.New("none yet")
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		var out structs.IndexedDirEntries
		args := &structs.KeyRequest{Key: "x", QueryOptions: structs.QueryOptions{MinQueryIndex: 1 << 40, MaxQueryTime: time.Minute}}
		errc <- f.callLeader(ctx, old.RPCAddr(), structs.MethodKVSGet, args, &out)
	}()
	testutil.Eventually(t, 10*time.Second, "the read in flight to the leader", func() error {
		f.pool.mu.Lock()
		defer f.pool.mu.Unlock()
		if sess := f.pool.m[old.RPCAddr()]; sess != nil && sess.NumStreams() > 0 {
			return nil
		}
		return errors.New("no stream open yet")
	})
	start := time.Now()
	if err := old.raft.LeadershipTransfer().Error(); err != nil {
		t.Fatalf("leadership transfer: %v", err)
	}
	select {
	case err := <-errc:
		var lc *leaderChangedError
		if !errors.As(err, &lc) || !lc.maybeSent {
			t.Fatalf("call ended with %v, want a leader change after sending", err)
		}
		if classifyHop(err, false) != hopOutcomeUnknown || classifyHop(err, true) != hopRetry {
			t.Fatalf("leader change mid-call must be outcome-unknown for a write, a retry for a read")
		}
		t.Logf("call ended %v after the transfer began", time.Since(start).Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		t.Fatalf("call to the old leader still held 20s after the leadership transfer")
	}
}
