package server

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cairnd/cairn/cluster/gossip"
	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"
	"go.uber.org/zap"
)

// connPool keeps one multiplexed session per peer server.
type connPool struct {
	log *zap.Logger
	tls rpc.TLSConfigurator // nil: dial plain
	mu  sync.Mutex
	m   map[string]*rpc.Session
}

func newConnPool(l *zap.Logger) *connPool { return &connPool{log: l, m: map[string]*rpc.Session{}} }

// get returns the session to addr, a server of datacenter dc ("" = ours),
// dialling it if needed (with TLS under verify_outgoing).
func (p *connPool) get(ctx context.Context, dc, addr string) (*rpc.Session, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		return nil, errors.New("server: connection pool closed")
	}
	if s, ok := p.m[addr]; ok && !s.IsClosed() {
		return s, nil
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var opts rpc.DialOptions
	if p.tls != nil {
		opts.TLS = p.tls.OutgoingTLS(dc)
	}
	s, err := rpc.Dial(dctx, addr, opts)
	if err != nil {
		return nil, &dialError{fmt.Errorf("server: dial %s: %w", addr, err)}
	}
	p.m[addr] = s
	return s, nil
}

func (p *connPool) call(ctx context.Context, addr, method string, args, reply any) error {
	return p.callDC(ctx, "", addr, method, args, reply)
}

// callDC calls a server of another datacenter: its certificate must name
// that datacenter under verify_server_hostname.
func (p *connPool) callDC(ctx context.Context, dc, addr, method string, args, reply any) error {
	s, err := p.get(ctx, dc, addr)
	if err != nil {
		return err
	}
	return s.Call(ctx, method, args, reply)
}

func (p *connPool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.m {
		s.Close()
	}
	p.m = nil
}

// forward decides where a request runs. It returns done=true when the
// request was handled remotely (another datacenter or the leader).
//
// A write goes to the leader at most once: it is sent again (to the same
// or a new leader) only when it provably never left this server: the
// connection could not be made, or the transport failed before the first
// byte. Once it may have been sent, any failure (the connection broke, the
// caller gave up, the leader stopped being the leader) is reported as
// ErrWriteOutcomeUnknown. A read is simply retried. An in-flight call ends
// as soon as raft names another leader (or none): a paused or cut-off
// leader holds its callers only until the cluster notices, not for a
// fixed timeout.
func (s *Server) forward(ctx context.Context, method, dc string, q *structs.QueryOptions, args, reply any) (bool, error) {
	if dc != "" && dc != s.cfg.Datacenter {
		err := s.forwardDC(ctx, method, dc, args, reply)
		if q == nil && classifyHop(err, false) == hopOutcomeUnknown {
			return true, fmt.Errorf("%w: %s forwarded to datacenter %s: %w", structs.ErrWriteOutcomeUnknown, method, dc, err)
		}
		return true, err
	}
	if q != nil && q.AllowStale {
		if q.MaxStaleDuration > 0 && !s.IsLeader() && s.lastContact() > q.MaxStaleDuration {
			// Too stale: fall through to the leader.
		} else {
			return false, nil
		}
	}
	// The leader may have just died: until raft elects another one,
	// Leader() still names it. Retry the hop while that is safe for up to
	// leaderWait, as Consul's RPC hold timeout does, instead of failing the
	// caller.
	read := q != nil
	deadline := time.Now().Add(leaderWait)
	for {
		leader, err := s.waitLeader(ctx)
		if err != nil {
			return true, err
		}
		if leader == "" {
			return false, nil // we are the leader
		}
		err = s.callLeader(ctx, leader, method, args, reply)
		switch classifyHop(err, read) {
		case hopDone:
			return true, err
		case hopOutcomeUnknown:
			return true, fmt.Errorf("%w: %s forwarded to leader %s: %w", structs.ErrWriteOutcomeUnknown, method, leader, err)
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return true, err
		}
		s.log.Debug("leader unreachable or replaced, retrying", zap.String("leader", leader), zap.String("method", method), zap.Error(err))
		var lc *leaderChangedError
		if errors.As(err, &lc) {
			continue // a new leader (or an election) is already known
		}
		select {
		case <-ctx.Done():
			return true, err
		case <-s.ctx.Done():
			return true, err
		case <-time.After(leaderRetryPause):
		}
	}
}

// leaderRetryPause spaces the retries of a failed hop to the leader.
const leaderRetryPause = 50 * time.Millisecond

// dialError marks a failure to connect: the request never left.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// errLeaderChanged is why a forwarded call is abandoned when raft names a
// different leader (or none) while the call is in flight.
var errLeaderChanged = errors.New("leader changed while the request was in flight")

// leaderChangedError reports a call to leader abandoned because raft
// stopped naming it the leader. maybeSent is false only when the change
// was seen before the call started.
type leaderChangedError struct {
	leader    string
	maybeSent bool
	err       error
}

func (e *leaderChangedError) Error() string {
	return fmt.Sprintf("%v (leader was %s)", errLeaderChanged, e.leader)
}
func (e *leaderChangedError) Unwrap() error { return e.err }

// hopOutcome is what forward does after a call to the leader.
type hopOutcome int

const (
	hopDone           hopOutcome = iota // the answer (or error) stands
	hopRetry                            // safe to try again, maybe on a new leader
	hopOutcomeUnknown                   // a write may have been applied: say so
)

// classifyHop decides what a failed call to the leader means. A write is
// retried only if it provably never left this server; a read whenever the
// failure was on the way (transport, leader change, a leader that no
// longer leads). An error that already says "outcome unknown" stands.
func classifyHop(err error, read bool) hopOutcome {
	var (
		de *dialError
		lc *leaderChangedError
		te *rpc.TransportError
	)
	switch {
	case err == nil, errors.Is(err, structs.ErrWriteOutcomeUnknown):
		return hopDone
	case errors.As(err, &de):
		return hopRetry
	case errors.As(err, &lc):
		if read || !lc.maybeSent {
			return hopRetry
		}
		return hopOutcomeUnknown
	case errors.As(err, &te):
		if read || !te.MaybeSent {
			return hopRetry
		}
		return hopOutcomeUnknown
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The caller gave up mid-call.
		if read {
			return hopDone
		}
		return hopOutcomeUnknown
	case read && errors.Is(err, structs.ErrNotLeader):
		// The server we took for the leader was not (or no longer) it,
		// e.g. a consistent read that failed to verify leadership.
		return hopRetry
	}
	return hopDone
}

// callLeader sends one request to leader, abandoning it as soon as raft
// names another leader or none (a *leaderChangedError then).
func (s *Server) callLeader(ctx context.Context, leader, method string, args, reply any) error {
	cctx, release := s.untilLeaderChanges(ctx, leader)
	defer release()
	if cctx.Err() != nil && ctx.Err() == nil {
		return &leaderChangedError{leader: leader, err: context.Cause(cctx)}
	}
	err := s.pool.call(cctx, leader, method, args, reply)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(cctx), errLeaderChanged) {
		var de *dialError
		if errors.As(err, &de) {
			return err // never sent
		}
		return &leaderChangedError{leader: leader, maybeSent: true, err: err}
	}
	return err
}

// leaderEpoch lasts while raft names one leader: its ctx is cancelled at
// the next change of raft's known leader (see watchLeader).
type leaderEpoch struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func newLeaderEpoch() *leaderEpoch {
	ctx, cancel := context.WithCancel(context.Background())
	return &leaderEpoch{ctx: ctx, cancel: cancel}
}

// watchLeader ends the current leader epoch at every leader observation
// raft sends (a change of leader, including to none). Observations may be
// dropped when the channel is full, but only while others are queued, so
// the epoch current after the last change is always ended.
func (s *Server) watchLeader(ch <-chan raft.Observation) {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			s.epoch.Load().cancel()
			return
		case <-ch:
			s.epoch.Swap(newLeaderEpoch()).cancel()
		}
	}
}

// untilLeaderChanges returns ctx's child that is cancelled with
// errLeaderChanged once raft no longer names leader as the leader. release
// must be called when the call is over.
func (s *Server) untilLeaderChanges(ctx context.Context, leader string) (context.Context, func()) {
	cctx, cancel := context.WithCancelCause(ctx)
	var (
		mu       sync.Mutex
		stop     func() bool
		released bool
	)
	var arm func()
	arm = func() {
		// Load the epoch before asking raft: a change after the check
		// ends this epoch, so it cannot slip by unseen.
		ep := s.epoch.Load()
		// On shutdown watchLeader ends the last epoch for good: stop
		// here rather than re-arm on it forever.
		if s.Leader() != leader || s.ctx.Err() != nil {
			cancel(errLeaderChanged)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !released {
			stop = context.AfterFunc(ep.ctx, arm)
		}
	}
	arm()
	return cctx, func() {
		mu.Lock()
		released = true
		if stop != nil {
			stop()
		}
		mu.Unlock()
		cancel(context.Canceled)
	}
}

// waitLeader returns "" when this server leads (and is ready for reads),
// the leader's RPC address otherwise, waiting up to leaderWait for one.
func (s *Server) waitLeader(ctx context.Context) (string, error) {
	deadline := time.Now().Add(leaderWait)
	for {
		ep := s.epoch.Load()
		if s.IsLeader() {
			if s.readyForReads.Load() {
				return "", nil
			}
		} else if addr := s.Leader(); addr != "" {
			return addr, nil
		}
		if time.Now().After(deadline) {
			return "", structs.ErrNoLeader
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-s.ctx.Done():
			return "", structs.ErrNoLeader
		case <-ep.ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Server) lastContact() time.Duration {
	if s.IsLeader() {
		return 0
	}
	lc := s.raft.LastContact()
	if lc.IsZero() {
		return time.Duration(1<<62 - 1)
	}
	return time.Since(lc)
}

// forwardDC sends the request to a random server of dc found over WAN.
func (s *Server) forwardDC(ctx context.Context, method, dc string, args, reply any) error {
	addrs := s.serversInDC(dc)
	if len(addrs) == 0 {
		return structs.ErrNoPathToDC
	}
	return s.pool.callDC(ctx, dc, addrs[rand.IntN(len(addrs))], method, args, reply)
}

func (s *Server) serversInDC(dc string) []string {
	if s.wan == nil {
		return nil
	}
	var out []string
	for _, m := range s.wan.Members() {
		if m.Status != serf.StatusAlive {
			continue
		}
		if mdc, addr, ok := gossip.ServerAddr(m); ok && mdc == dc {
			out = append(out, addr)
		}
	}
	return out
}

// Datacenters lists the known datacenters, local first.
func (s *Server) Datacenters() []string {
	seen := map[string]bool{s.cfg.Datacenter: true}
	out := []string{s.cfg.Datacenter}
	if s.wan != nil {
		for _, m := range s.wan.Members() {
			if dc, _, ok := gossip.ServerAddr(m); ok && !seen[dc] {
				seen[dc] = true
				out = append(out, dc)
			}
		}
	}
	return out
}

// maxApplyAttempts bounds how often write sends one request to Raft again
// after Raft refused it without giving it a log index (and how often read
// runs again after leadership moved away mid-read).
const maxApplyAttempts = 3

// apply commits a command through Raft on the leader and returns the FSM's
// response and the log index. It must run on the leader. Its errors are
// classified by applyError: ErrNotLeader only when the entry never left
// this server.
func (s *Server) apply(t structs.MessageType, req any) (any, uint64, error) {
	buf, err := structs.Encode(t, req)
	if err != nil {
		return nil, 0, err
	}
	f := s.raft.Apply(buf, raftApplyTimeout)
	if err := s.wait(f); err != nil {
		// raft gives an entry its index when it dispatches it to the log
		// and the followers; before that it is only on this server. A
		// future left unanswered as the server closes may have been
		// dispatched (and its index is not safe to read).
		return nil, 0, applyError(err, errors.Is(err, errAbandoned) || f.Index() != 0)
	}
	s.noteCommit()
	resp := f.Response()
	if err, ok := resp.(error); ok {
		return nil, 0, err
	}
	return resp, f.Index(), nil
}

// awaitNextLeader pauses a write that raft refused as "not leader" while
// leadership is moving: until the epoch ep ends (raft names the next
// leader) or briefly, if it already did. It reports false when ctx ended
// first and the write should give up.
func awaitNextLeader(ctx context.Context, ep *leaderEpoch) bool {
	select {
	case <-ep.ctx.Done():
	case <-time.After(leaderRetryPause):
	case <-ctx.Done():
		return false
	}
	return true
}

// applyError maps a failed raft.Apply to what the caller may conclude.
// dispatched: raft had given the entry a log index, so it may be in other
// servers' logs and a later leader may commit it: ErrLeadershipLost (and
// any other failure after that point) is ErrWriteOutcomeUnknown, never
// "not leader", since resubmitting could apply it twice. Raft's own
// refusals before dispatch (not leader, leadership transfer) are
// ErrNotLeader: the entry never left, write may send it to the new leader.
func applyError(err error, dispatched bool) error {
	switch {
	case !dispatched && (errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress)):
		return fmt.Errorf("%w: %w", structs.ErrNotLeader, err)
	case !dispatched:
		// Enqueue timeout or shutdown before raft took the entry: not
		// applied, and not worth retrying here.
		return fmt.Errorf("server: raft apply: %w", err)
	case errors.Is(err, raft.ErrAbortedByRestore):
		// raft: a snapshot restore discards in-flight entries.
		return fmt.Errorf("server: raft apply: %w", err)
	}
	return fmt.Errorf("%w: %w", structs.ErrWriteOutcomeUnknown, err)
}

// write runs a state-changing request: forwarded to the leader (or another
// datacenter) or applied here, and submitted to Raft at most once: only a
// refusal before dispatch (ErrNotLeader from apply) sends it on again.
func (s *Server) write(ctx context.Context, method, dc string, t structs.MessageType, req any, reply *structs.WriteResponse) error {
	if err := structs.ValidateWrite(req); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		if done, err := s.forward(ctx, method, dc, nil, req, reply); done {
			return err
		}
		ep := s.epoch.Load()
		resp, idx, err := s.apply(t, req)
		if errors.Is(err, structs.ErrNotLeader) && attempt < maxApplyAttempts {
			if !awaitNextLeader(ctx, ep) {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		reply.Index = idx
		reply.Success = true
		if b, ok := resp.(bool); ok {
			reply.Success = b
		}
		return nil
	}
}

// read runs a query with Consul's consistency modes and blocking semantics.
// fn reads the given store and returns the index the result reflects; a
// blocking query waits on key, the state fn reads.
func (s *Server) read(ctx context.Context, method, dc string, q *structs.QueryOptions, meta *structs.QueryMeta, args, reply any, key state.Key, fn func(st *state.Store) (uint64, error)) error {
	for attempt := 1; ; attempt++ {
		if done, err := s.forward(ctx, method, dc, q, args, reply); done {
			return err
		}
		err := s.readLocal(ctx, q, meta, key, fn)
		if errors.Is(err, structs.ErrNotLeader) && attempt < maxApplyAttempts && ctx.Err() == nil {
			continue // leadership moved away: the read goes to the new leader
		}
		return err
	}
}

// readLocal runs the query on this server's state.
func (s *Server) readLocal(ctx context.Context, q *structs.QueryOptions, meta *structs.QueryMeta, key state.Key, fn func(st *state.Store) (uint64, error)) error {
	for {
		st := s.fsm.State()
		idx, err := st.BlockKey(ctx, q.MinQueryIndex, q.MaxQueryTime, key, func() (uint64, error) { return fn(st) })
		if err != nil {
			return err
		}
		select {
		case <-st.AbandonCh():
			// A snapshot restore swapped the store mid-query: re-run on the new one.
			if ctx.Err() == nil {
				continue
			}
		default:
		}
		if q.RequireConsistent {
			// Verify after the read, on this server, whatever the local
			// view of leadership: a quorum still followed this server once
			// the state was read (a blocking read may have waited minutes),
			// so no other leader can have committed what it did not see.
			// A caller that was forwarded here retries on the new leader.
			if err := s.wait(s.raft.VerifyLeader()); err != nil {
				return fmt.Errorf("%w: consistent read: leadership not verified: %w", structs.ErrNotLeader, err)
			}
		}
		meta.Index = idx
		meta.KnownLeader = s.Leader() != ""
		meta.LastContact = s.lastContact()
		if s.IsLeader() {
			meta.LastContact = 0
		}
		return nil
	}
}
