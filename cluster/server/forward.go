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
	mu  sync.Mutex
	m   map[string]*rpc.Session
}

func newConnPool(l *zap.Logger) *connPool { return &connPool{log: l, m: map[string]*rpc.Session{}} }

func (p *connPool) get(ctx context.Context, addr string) (*rpc.Session, error) {
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
	s, err := rpc.Dial(dctx, addr, rpc.DialOptions{})
	if err != nil {
		return nil, &dialError{fmt.Errorf("server: dial %s: %w", addr, err)}
	}
	p.m[addr] = s
	return s, nil
}

func (p *connPool) call(ctx context.Context, addr, method string, args, reply any) error {
	s, err := p.get(ctx, addr)
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
func (s *Server) forward(ctx context.Context, method, dc string, q *structs.QueryOptions, args, reply any) (bool, error) {
	if dc != "" && dc != s.cfg.Datacenter {
		return true, s.forwardDC(ctx, method, dc, args, reply)
	}
	if q != nil && q.AllowStale {
		if q.MaxStaleDuration > 0 && !s.IsLeader() && s.lastContact() > q.MaxStaleDuration {
			// Too stale: fall through to the leader.
		} else {
			return false, nil
		}
	}
	// The leader may have just died: until raft elects another one,
	// Leader() still names it. Retry the hop while that can be safe (a
	// read, or a write that provably never left) for up to leaderWait, as
	// Consul's RPC hold timeout does, instead of failing the caller.
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
		err = s.pool.call(ctx, leader, method, args, reply)
		if err == nil || !retryableHop(err, read) || ctx.Err() != nil || time.Now().After(deadline) {
			return true, err
		}
		s.log.Debug("leader unreachable, retrying", zap.String("leader", leader), zap.String("method", method), zap.Error(err))
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

// retryableHop reports whether a failed call to another server may be
// repeated: always if the connection could not be made or the request
// provably never left, and for reads whenever the transport failed.
func retryableHop(err error, read bool) bool {
	var de *dialError
	if errors.As(err, &de) {
		return true
	}
	var te *rpc.TransportError
	return errors.As(err, &te) && (read || !te.MaybeSent)
}

// waitLeader returns "" when this server leads (and is ready for reads),
// the leader's RPC address otherwise, waiting up to leaderWait for one.
func (s *Server) waitLeader(ctx context.Context) (string, error) {
	deadline := time.Now().Add(leaderWait)
	for {
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
	return s.pool.call(ctx, addrs[rand.IntN(len(addrs))], method, args, reply)
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

// apply commits a command through Raft on the leader and returns the FSM's
// response and the log index. It must run on the leader.
func (s *Server) apply(t structs.MessageType, req any) (any, uint64, error) {
	buf, err := structs.Encode(t, req)
	if err != nil {
		return nil, 0, err
	}
	f := s.raft.Apply(buf, raftApplyTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return nil, 0, structs.ErrNotLeader
		}
		return nil, 0, err
	}
	resp := f.Response()
	if err, ok := resp.(error); ok {
		return nil, 0, err
	}
	return resp, f.Index(), nil
}

// write runs a state-changing request: forwarded to the leader (or another
// datacenter) or applied here.
func (s *Server) write(ctx context.Context, method, dc string, t structs.MessageType, req any, reply *structs.WriteResponse) error {
	for attempt := 0; ; attempt++ {
		if done, err := s.forward(ctx, method, dc, nil, req, reply); done {
			return err
		}
		resp, idx, err := s.apply(t, req)
		if errors.Is(err, structs.ErrNotLeader) && attempt < 3 {
			continue // leadership moved between the check and the apply
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
	if done, err := s.forward(ctx, method, dc, q, args, reply); done {
		return err
	}
	if q.RequireConsistent && s.IsLeader() {
		if err := s.raft.VerifyLeader().Error(); err != nil {
			return structs.ErrNotLeader
		}
	}
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
		meta.Index = idx
		meta.KnownLeader = s.Leader() != ""
		meta.LastContact = s.lastContact()
		if s.IsLeader() {
			meta.LastContact = 0
		}
		return nil
	}
}
