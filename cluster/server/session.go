package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
)

// sessionRetryPause is how long the leader waits before retrying the
// destroy of a lapsed session whose Raft apply failed.
const sessionRetryPause = time.Second

// sessionTTLs are the leader's TTL timers (Consul's): a TTL session is
// destroyed SessionTTLMultiplier × TTL after its creation or last renew,
// as this leader's clock counts. Timers run only while this server leads:
// start arms one for every TTL session in the state, from now, and stop
// disarms all. A fired timer marks its session due and kicks the leader
// loop, which destroys due sessions through Raft.
type sessionTTLs struct {
	mu     sync.Mutex
	active bool
	timers map[string]*time.Timer
	due    map[string]struct{}
	kick   chan struct{} // capacity 1: "something is due"
}

func newSessionTTLs() *sessionTTLs {
	return &sessionTTLs{
		timers: make(map[string]*time.Timer),
		due:    make(map[string]struct{}),
		kick:   make(chan struct{}, 1),
	}
}

// start arms a timer for each session of sessions that has a TTL.
func (t *sessionTTLs) start(sessions []*structs.Session) {
	t.mu.Lock()
	t.active = true
	t.mu.Unlock()
	for _, sess := range sessions {
		if ttl, err := sess.TTLDuration(); err == nil && ttl > 0 {
			t.reset(sess.ID, ttl)
		}
	}
}

// stop disarms every timer and forgets due sessions: the next leader
// re-arms them from its own clock.
func (t *sessionTTLs) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active = false
	for id, tm := range t.timers {
		tm.Stop()
		delete(t.timers, id)
	}
	clear(t.due)
}

// reset (re)arms session id's timer to fire after SessionTTLMultiplier ×
// ttl. It does nothing unless this server leads.
func (t *sessionTTLs) reset(id string, ttl time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.active {
		return
	}
	if tm := t.timers[id]; tm != nil {
		tm.Stop()
	}
	t.timers[id] = time.AfterFunc(structs.SessionTTLMultiplier*ttl, func() { t.fire(id) })
}

// clear disarms session id's timer (it was destroyed).
func (t *sessionTTLs) clear(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tm := t.timers[id]; tm != nil {
		tm.Stop()
		delete(t.timers, id)
	}
	delete(t.due, id)
}

func (t *sessionTTLs) fire(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.active {
		return
	}
	delete(t.timers, id)
	t.due[id] = struct{}{}
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// takeDue returns and forgets the due sessions, sorted.
func (t *sessionTTLs) takeDue() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.due))
	for id := range t.due {
		out = append(out, id)
	}
	clear(t.due)
	slices.Sort(out)
	return out
}

// armed reports how many timers are armed (tests).
func (t *sessionTTLs) armed() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.timers)
}

// expireSessions destroys the due sessions, on the leader loop. A failed
// destroy is retried after sessionRetryPause while this server leads.
func (s *Server) expireSessions(ctx context.Context) {
	for _, id := range s.sessionTTL.takeDue() {
		if _, sess := s.State().SessionGet(id); sess == nil {
			continue // destroyed or invalidated meanwhile
		}
		req := &structs.SessionRequest{Datacenter: s.cfg.Datacenter, Op: structs.SessionDestroy, Session: structs.Session{ID: id}}
		if _, _, err := s.apply(structs.SessionRequestType, req); err != nil {
			s.log.Warn("destroying lapsed session failed; retrying", zap.String("session", id), zap.Error(err))
			go func() {
				select {
				case <-ctx.Done():
				case <-time.After(sessionRetryPause):
					s.sessionTTL.fire(id)
				}
			}()
			continue
		}
		s.sessionsLapsed.Inc()
		s.log.Debug("session TTL lapsed; destroyed", zap.String("session", id))
	}
}

// sessionTTLMin is the configured shortest TTL.
func (s *Server) sessionTTLMin() time.Duration {
	if s.cfg.SessionTTLMin > 0 {
		return s.cfg.SessionTTLMin
	}
	return structs.SessionTTLMin
}

// sessionApply serves Session.Apply, and KVS.Apply's lock and unlock ops:
// checks that need the server's configuration, then the leader's
// lock-delay check (Consul's: a lock on a lock-delayed key answers false
// without reaching Raft), the write, and the TTL timer.
func (s *Server) sessionApply(ctx context.Context, a *structs.SessionRequest, r *structs.WriteResponse) error {
	if err := a.Validate(); err != nil {
		return err
	}
	var ttl time.Duration
	if a.Op == structs.SessionCreate {
		ttl, _ = a.Session.TTLDuration() // Validate parsed it
		if lo := s.sessionTTLMin(); ttl != 0 && ttl < lo {
			return &structs.FieldError{Field: "TTL", Reason: fmt.Sprintf("%v is outside [%v, %v]", ttl, lo, structs.SessionTTLMax)}
		}
	}
	if done, err := s.forward(ctx, structs.MethodSessionApply, a.Datacenter, nil, a, r); done {
		return err
	}
	if a.Op == structs.SessionLock && time.Now().Before(s.State().KVSLockDelay(a.DirEnt.Key)) {
		s.log.Debug("rejecting lock of a lock-delayed key", zap.String("key", a.DirEnt.Key))
		r.Success = false
		return nil
	}
	if err := s.write(ctx, structs.MethodSessionApply, a.Datacenter, structs.SessionRequestType, a, r); err != nil {
		return err
	}
	switch a.Op {
	case structs.SessionCreate:
		if ttl > 0 {
			s.sessionTTL.reset(a.Session.ID, ttl)
		}
	case structs.SessionDestroy:
		s.sessionTTL.clear(a.Session.ID)
	}
	return nil
}

// sessionRenew serves Session.Renew on the leader: the session (none if
// it is gone) with its TTL timer re-armed.
func (s *Server) sessionRenew(ctx context.Context, a *structs.SessionSpecificRequest, r *structs.IndexedSessions) error {
	if a.SessionID == "" {
		return &structs.FieldError{Field: "ID", Reason: "missing session ID"}
	}
	// Renewing is the leader's business whatever the caller asked.
	q := a.QueryOptions
	q.AllowStale, q.MinQueryIndex = false, 0
	args := *a
	args.QueryOptions = q
	return s.read(ctx, structs.MethodSessionRenew, a.Datacenter, &args.QueryOptions, &r.QueryMeta, &args, r,
		state.TablesKey(state.TableSessions), func(st *state.Store) (uint64, error) {
			idx, sess := st.SessionGet(a.SessionID)
			r.Sessions = nil
			if sess == nil {
				return idx, nil
			}
			if !s.IsLeader() {
				return 0, structs.ErrNotLeader
			}
			if ttl, err := sess.TTLDuration(); err == nil && ttl > 0 {
				s.sessionTTL.reset(sess.ID, ttl)
			}
			r.Sessions = []*structs.Session{sess}
			return idx, nil
		})
}

func (s *Server) registerSessionEndpoints() {
	s.sessionsLapsed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_session_ttl_lapsed_total",
		Help: "Sessions this server, as leader, destroyed because their TTL lapsed without a renew.",
	})
	if err := s.cfg.Registry.Register(s.sessionsLapsed); err != nil {
		s.log.Warn("metric registration", zap.Error(err))
	}
	handle(s, structs.MethodSessionApply, s.sessionApply)
	handle(s, structs.MethodSessionRenew, s.sessionRenew)
}

// sessionReads are the session read endpoints; all watch the sessions
// table.
func sessionReads() []func(*Server, *blockGroup) {
	sessionsKey := func(any) state.Key { return state.TablesKey(state.TableSessions) }
	return []func(*Server, *blockGroup){
		readEndpoint(structs.MethodSessionGet,
			func(a *structs.SessionSpecificRequest) state.Key { return sessionsKey(a) },
			func(st *state.Store, a *structs.SessionSpecificRequest, r *structs.IndexedSessions) uint64 {
				idx, sess := st.SessionGet(a.SessionID)
				r.Sessions = nil
				if sess != nil {
					r.Sessions = []*structs.Session{sess}
				}
				return idx
			}),
		readEndpoint(structs.MethodSessionList,
			func(a *structs.DCSpecificRequest) state.Key { return sessionsKey(a) },
			func(st *state.Store, a *structs.DCSpecificRequest, r *structs.IndexedSessions) (idx uint64) {
				idx, r.Sessions = st.SessionList()
				return idx
			}),
		readEndpoint(structs.MethodSessionNode,
			func(a *structs.NodeSpecificRequest) state.Key { return sessionsKey(a) },
			func(st *state.Store, a *structs.NodeSpecificRequest, r *structs.IndexedSessions) (idx uint64) {
				idx, r.Sessions = st.NodeSessions(a.Node)
				return idx
			}),
	}
}
