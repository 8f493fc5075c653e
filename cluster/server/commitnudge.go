package server

import (
	"sync/atomic"
	"time"
)

// Followers learn that an entry is committed from the leader's next
// AppendEntries: the next write's, or (hashicorp/raft) an empty one sent
// after CommitTimeout (50 ms, randomised to 50–100 ms) without writes. A
// follower applies, and so pushes to the subscriptions it serves, only
// what it knows is committed, so a client agent attached to a follower
// saw an isolated write (a check turning critical) 50–100 ms late:
// cairnbench's freshness p50 70 ms, p99 104 ms, where a client attached
// to the leader sees about 5 ms. Lowering CommitTimeout to 5 ms gave 11 /
// 19 ms but cost the idle leader 13% CPU and 3,700 wake-ups a second
// (3.6% and 810 at 50 ms), every second of its life.
//
// Instead, once writes pause for commitQuiet, the leader appends a Raft
// barrier: a log entry the state machine never sees, whose AppendEntries
// carries the commit index of the writes before it, so followers apply
// them once the barrier is appended (leader, then follower: an fsync
// each) and a round trip later. While writes keep coming each one does that
// for the last, and no barrier is added; when nothing is written nothing
// is sent.
const (
	// commitQuiet is the pause after the last write before the barrier.
	// Barriers come at most once a quiet gap: for writes arriving at
	// random at rate r, r·e^(-r·commitQuiet) a second, at most
	// 1/(e·commitQuiet), ≈74/s at 5 ms (≈184/s at 2 ms), whatever the
	// load; each costs a log append (an fsync when not batched with a
	// write). Measured freshness on a follower: p50 ≈11 ms at 5 ms, ≈7.5
	// ms at 2 ms.
	commitQuiet = 5 * time.Millisecond
	// nudgeEnqueueTimeout bounds handing the barrier to Raft.
	nudgeEnqueueTimeout = time.Second
)

// commitNudge is the state shared by noteCommit and nudgeFollowers.
type commitNudge struct {
	last    atomic.Int64  // unix nanos of the last write committed here
	pending atomic.Bool   // a nudge is signalled or being timed
	ch      chan struct{} // wakes nudgeFollowers (buffer 1)
}

// noteCommit records a write this server committed as leader.
func (s *Server) noteCommit() {
	n := &s.nudge
	n.last.Store(time.Now().UnixNano())
	if !n.pending.Swap(true) {
		select {
		case n.ch <- struct{}{}:
		default:
		}
	}
}

// nudgeFollowers appends a barrier once writes pause (see above). It runs
// for the server's life.
func (s *Server) nudgeFollowers() {
	defer s.wg.Done()
	n := &s.nudge
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-n.ch:
		}
		for {
			wait := time.Duration(n.last.Load() + int64(commitQuiet) - time.Now().UnixNano())
			if wait <= 0 {
				break
			}
			t.Reset(wait)
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		// Cleared before the barrier: a write committed from here on
		// signals again, and one committed before is covered by it.
		n.pending.Store(false)
		if s.IsLeader() {
			// Not waited for: nothing depends on it, and an unanswered
			// future at shutdown holds nobody (see waitFuture).
			s.raft.Barrier(nudgeEnqueueTimeout)
		}
	}
}
