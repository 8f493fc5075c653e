package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/cairnd/cairn/cluster/rpc"
	"go.uber.org/zap"
)

// subscription is the server's memory of one client subscription.
type subscription struct {
	id      uint64
	key     topicKey
	tag     string
	passing bool
	// sent is false until the first answer (Snapshot or Resumed) went out.
	sent bool
	// want > 0: the client resumed from this index; nothing is answered
	// while this server is behind it.
	want uint64
	// index and hash of the last result the client holds.
	index uint64
	hash  uint64
}

// session is one client's subscription stream. The reader (run) applies
// requests; the sender goroutine answers and pushes events. Publisher.Changed
// only marks: dirty holds at most one mark per subscribed key.
type session struct {
	p  *Publisher
	st *rpc.Stream

	mu      sync.Mutex
	subs    map[uint64]*subscription
	byKey   map[topicKey][]uint64 // subscription IDs per key
	dirty   map[topicKey]struct{}
	all     bool            // re-check every subscription (Reset)
	errs    []Event         // refusals to send
	newSubs map[uint64]bool // subscriptions awaiting their first answer
	wake    chan struct{}   // 1-buffered
}

func newSession(p *Publisher, st *rpc.Stream) *session {
	return &session{p: p, st: st,
		subs:    make(map[uint64]*subscription),
		byKey:   make(map[topicKey][]uint64),
		dirty:   make(map[topicKey]struct{}),
		newSubs: make(map[uint64]bool),
		wake:    make(chan struct{}, 1),
	}
}

func (s *session) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// mark notes a change to k; called with the publisher's lock held.
func (s *session) mark(k topicKey) {
	s.mu.Lock()
	s.dirty[k] = struct{}{}
	s.mu.Unlock()
	s.signal()
}

func (s *session) markAll() {
	s.mu.Lock()
	s.all = true
	s.mu.Unlock()
	s.signal()
}

// run reads requests until the stream ends; a sender goroutine it owns
// writes answers and events.
func (s *session) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { s.st.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel()
		if err := s.send(ctx); err != nil && ctx.Err() == nil {
			s.p.metrics.drops.Inc()
			s.p.log.Info("stream: dropping slow or broken subscriber; it resumes on its next stream", zap.Error(err))
			s.st.Close()
		}
	}()
	for {
		var r Request
		if err := s.st.Recv(&r); err != nil {
			return err
		}
		if err := s.apply(&r); err != nil {
			return err
		}
	}
}

// apply handles one client request.
func (s *session) apply(r *Request) error {
	if err := r.Validate(); err != nil {
		return s.refuse(r.ID, err)
	}
	switch r.Op {
	case OpUnsubscribe:
		s.mu.Lock()
		sub := s.subs[r.ID]
		if sub != nil {
			delete(s.subs, r.ID)
			delete(s.newSubs, r.ID)
			ids := s.byKey[sub.key]
			for i, id := range ids {
				if id == r.ID {
					ids = append(ids[:i], ids[i+1:]...)
					break
				}
			}
			if len(ids) == 0 {
				delete(s.byKey, sub.key)
			} else {
				s.byKey[sub.key] = ids
			}
		}
		s.mu.Unlock()
		if sub != nil {
			s.p.removeSub(s, sub.key)
		}
		return nil
	}
	if r.Datacenter != "" && r.Datacenter != s.p.cfg.Datacenter {
		return s.refuse(r.ID, fmt.Errorf("stream: datacenter %q is not this server's %q (field Datacenter)", r.Datacenter, s.p.cfg.Datacenter))
	}
	sub := &subscription{id: r.ID, key: topicKey{r.Topic, r.Key}, tag: r.Tag, passing: r.PassingOnly, want: r.Index}
	s.mu.Lock()
	if s.subs == nil {
		s.mu.Unlock()
		return errors.New("stream: session closed")
	}
	if _, dup := s.subs[r.ID]; dup {
		s.mu.Unlock()
		return s.refuse(r.ID, fmt.Errorf("stream: subscription %d already live (field ID)", r.ID))
	}
	if len(s.subs) >= s.p.cfg.MaxSubscriptions {
		s.mu.Unlock()
		return s.refuse(r.ID, fmt.Errorf("stream: more than %d subscriptions on one session", s.p.cfg.MaxSubscriptions))
	}
	s.subs[r.ID] = sub
	s.byKey[sub.key] = append(s.byKey[sub.key], r.ID)
	s.newSubs[r.ID] = true
	s.mu.Unlock()
	// Indexed before the first read: a change from here on marks it.
	s.p.addSub(s, sub.key)
	s.signal()
	return nil
}

// maxPendingErrors bounds the refusals queued for a client that keeps
// sending bad requests without reading; past it the session is closed.
const maxPendingErrors = 1024

func (s *session) refuse(id uint64, err error) error {
	s.mu.Lock()
	if len(s.errs) >= maxPendingErrors {
		s.mu.Unlock()
		return fmt.Errorf("stream: more than %d refusals pending; closing", maxPendingErrors)
	}
	s.errs = append(s.errs, Event{ID: id, Kind: KindError, Error: err.Error()})
	s.mu.Unlock()
	s.signal()
	return nil
}

// send is the sender loop: on each wake it answers new subscriptions and
// pushes the dirty keys' results. A write error ends it (the caller drops
// the session).
func (s *session) send(ctx context.Context) error {
	var work []*subscription
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		}
		s.mu.Lock()
		if s.subs == nil {
			s.mu.Unlock()
			return nil
		}
		errs := s.errs
		s.errs = nil
		work = work[:0]
		if s.all {
			s.all = false
			clear(s.dirty)
			for _, sub := range s.subs {
				work = append(work, sub)
			}
		} else {
			for id := range s.newSubs {
				if sub := s.subs[id]; sub != nil {
					work = append(work, sub)
				}
			}
			for k := range s.dirty {
				for _, id := range s.byKey[k] {
					if sub := s.subs[id]; sub != nil && !s.newSubs[id] {
						work = append(work, sub)
					}
				}
			}
			clear(s.dirty)
		}
		clear(s.newSubs)
		s.mu.Unlock()

		for i := range errs {
			if err := s.st.Send(&errs[i]); err != nil {
				return err
			}
			s.p.metrics.sent(KindError)
		}
		st := s.p.cfg.State()
		for _, sub := range work {
			if err := s.push(st, sub); err != nil {
				return err
			}
		}
	}
}

// push sends what sub's client lacks: its first answer, or an update if
// the result changed. Only the sender goroutine touches sub's answer
// fields.
func (s *session) push(st State, sub *subscription) error {
	s.mu.Lock()
	live := s.subs[sub.id] == sub
	s.mu.Unlock()
	if !live {
		return nil
	}
	idx, ev, hash, err := s.p.result(st, sub)
	if err != nil {
		return err
	}
	ev.ID, ev.Index = sub.id, idx
	switch {
	case sub.want > 0 && idx < sub.want && st.Index() < sub.want:
		// This server is behind the client (a lagging follower): answer
		// once it has applied the change the client holds, which marks
		// this key.
		return nil
	case sub.want > 0 && idx == sub.want:
		// Resume: the client holds this very result.
		ev = Event{ID: sub.id, Kind: KindResumed, Index: idx}
		sub.want = 0
	case !sub.sent || sub.want > 0:
		if sub.want > 0 {
			s.p.metrics.resnapshots.Inc()
		}
		ev.Kind = KindSnapshot
		sub.want = 0
	case idx <= sub.index || hash == sub.hash:
		return nil // nothing the client does not have
	default:
		ev.Kind = KindUpdate
	}
	if err := s.st.Send(&ev); err != nil {
		return err
	}
	sub.sent, sub.index, sub.hash = true, idx, hash
	s.p.metrics.sent(ev.Kind)
	return nil
}
