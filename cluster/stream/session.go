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
// requests; a sender goroutine, started only while there is something to
// send, answers and pushes events (an idle subscribed session costs the
// reader goroutine only). Publisher.Changed only marks: dirty holds at most
// one mark per subscribed key.
type session struct {
	p   *Publisher
	st  *rpc.Stream
	ctx context.Context

	mu      sync.Mutex
	subs    map[uint64]*subscription
	byKey   map[topicKey][]uint64 // subscription IDs per key
	dirty   map[topicKey]struct{}
	all     bool            // re-check every subscription (Reset)
	errs    []Event         // refusals to send
	newSubs map[uint64]bool // subscriptions awaiting their first answer
	frame   []byte          // the sender's frame buffer
	sending bool            // the sender goroutine runs
	closed  bool            // run ended or a send failed: no new sender
	senders sync.WaitGroup
}

func newSession(ctx context.Context, p *Publisher, st *rpc.Stream) *session {
	return &session{p: p, st: st, ctx: ctx,
		subs:    make(map[uint64]*subscription),
		byKey:   make(map[topicKey][]uint64),
		dirty:   make(map[topicKey]struct{}),
		newSubs: make(map[uint64]bool),
	}
}

// kickLocked starts the sender unless it runs. s.mu held.
func (s *session) kickLocked() {
	if s.sending || s.closed {
		return
	}
	s.sending = true
	s.senders.Add(1)
	go func() {
		defer s.senders.Done()
		if err := s.send(); err != nil {
			s.p.metrics.drops.Inc()
			s.p.log.Info("stream: dropping slow or broken subscriber; it resumes on its next stream", zap.Error(err))
			s.st.Close() // ends run's Recv
		}
	}()
}

// mark notes a change to k; called with the publisher's lock held.
func (s *session) mark(k topicKey) {
	s.mu.Lock()
	s.dirty[k] = struct{}{}
	s.kickLocked()
	s.mu.Unlock()
}

func (s *session) markAll() {
	s.mu.Lock()
	s.all = true
	s.kickLocked()
	s.mu.Unlock()
}

// run reads requests until the stream ends, then waits for the sender.
func (s *session) run() error {
	stop := context.AfterFunc(s.ctx, func() { s.st.Close() })
	defer stop()
	defer func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.st.Close() // a sender blocked in Send returns
		s.senders.Wait()
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
	s.mu.Lock()
	s.kickLocked()
	s.mu.Unlock()
	return nil
}

// maxKeptFrame: a frame buffer grown past this by one big result is not
// kept, so an idle session does not pin it.
const maxKeptFrame = 64 << 10

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
	s.kickLocked()
	s.mu.Unlock()
	return nil
}

// send is the sender: it answers new subscriptions and pushes the dirty
// keys' results until nothing is left, then ends (a later mark starts it
// again). A write error ends it and is returned (the session is dropped).
func (s *session) send() error {
	var work []*subscription
	for {
		s.mu.Lock()
		if s.closed || s.subs == nil || s.ctx.Err() != nil {
			s.sending = false
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
		if len(errs) == 0 && len(work) == 0 {
			s.sending = false
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()

		if err := s.sendAll(errs, work); err != nil {
			s.mu.Lock()
			s.sending, s.closed = false, true
			s.mu.Unlock()
			return err
		}
	}
}

func (s *session) sendAll(errs []Event, work []*subscription) error {
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
	return nil
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
	m, err := s.p.result(st, sub)
	if err != nil {
		return err
	}
	idx, hash, body := m.idx, m.hash, m.body
	var kind Kind
	switch {
	case sub.want > 0 && idx < sub.want && st.Index() < sub.want:
		// This server is behind the client (a lagging follower): answer
		// once it has applied the change the client holds, which marks
		// this key.
		return nil
	case sub.want > 0 && idx == sub.want:
		// Resume: the client holds this very result.
		kind, body = KindResumed, nil
		sub.want = 0
	case !sub.sent || sub.want > 0:
		if sub.want > 0 {
			s.p.metrics.resnapshots.Inc()
		}
		kind = KindSnapshot
		sub.want = 0
	case idx <= sub.index || hash == sub.hash:
		return nil // nothing the client does not have
	default:
		kind = KindUpdate
	}
	// The result was encoded once for every session holding the key;
	// only the frame's head is ours.
	s.frame = appendEvent(s.frame[:0], sub.id, kind, idx, sub.key.topic, body)
	if err := s.st.SendRaw(s.frame); err != nil {
		return err
	}
	if cap(s.frame) > maxKeptFrame {
		s.frame = nil
	}
	sub.sent, sub.index, sub.hash = true, idx, hash
	s.p.metrics.sent(kind)
	return nil
}
