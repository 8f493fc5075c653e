package forwarder

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/stream"
	"go.uber.org/zap"
)

// Subscriptions keeps a client's subscriptions (cluster/stream) on ONE
// long-lived stream over the forwarder's current session, whatever their
// number. When the session or the stream dies (failover, rebalance), Run
// opens a new stream on the forwarder's next session and re-sends every
// live subscription with the index of the last result it delivered, so the
// new server answers Resumed (nothing missed) or a fresh Snapshot.
//
// Events are handed to Deliver from Run's goroutine, in stream order, never
// under a lock of Subscriptions: Deliver may call Subscribe and
// Unsubscribe, and must not block for long (it delays every later event).
type Subscriptions struct {
	f       *Forwarder
	cfg     SubscriptionsConfig
	logger  *zap.Logger
	mu      sync.Mutex
	subs    map[uint64]subState
	nextID  uint64
	cur     *rpc.Stream // nil while disconnected
	running bool
}

// SubscriptionsConfig configures Subscriptions.
type SubscriptionsConfig struct {
	// Datacenter is the local datacenter; subscriptions are local only.
	Datacenter string
	// Deliver receives every event of a live subscription (required).
	Deliver func(stream.Event)
	// Down, if set, is called (from Run's goroutine) each time a live
	// stream is lost; events stop until the next stream is up, which Up
	// reports. The cache uses it to count its entries as unconfirmed.
	Down func(err error)
	// Up, if set, is called once a stream is open and every subscription
	// re-sent, with the server's address.
	Up func(server string)
	// Unsupported, if set, is called when a server does not know
	// MethodSubscribe (an older server during a rolling upgrade): the
	// caller must keep its data current some other way. Run then retries
	// only every unsupportedRetry.
	Unsupported func(err error)
}

// subState is what a client remembers per subscription: where to ask
// what it subscribed to, and the index of the last result delivered (its
// resume point). A client agent holds one per cached name, so the map
// keeps 24 bytes inline per subscription; the cache entry that is the
// source already holds the key, tag and topic.
type subState struct {
	src   stream.Source
	index uint64
}

// request is the subscription's Request, resuming from its index.
func (st subState) request(id uint64, dc string) stream.Request {
	r := st.src.Subscription()
	r.Op, r.ID, r.Datacenter, r.Index = stream.OpSubscribe, id, dc, st.index
	return r
}

// Stream timings.
const (
	// streamOpenTimeout bounds opening the stream on a live session.
	streamOpenTimeout = 5 * time.Second
	// maxStreamBackoff caps the pause between failed stream opens on live
	// sessions; dead sessions are replaced by Run at its own pace.
	maxStreamBackoff = time.Second
	// unsupportedRetry: how often a server without subscriptions is asked
	// again (it may have been upgraded meanwhile).
	unsupportedRetry = 30 * time.Second
)

// NewSubscriptions returns an idle Subscriptions bound to f; Run connects.
func (f *Forwarder) NewSubscriptions(cfg SubscriptionsConfig) (*Subscriptions, error) {
	if cfg.Deliver == nil {
		return nil, errors.New("forwarder: subscriptions need a Deliver func")
	}
	if cfg.Datacenter == "" {
		cfg.Datacenter = f.cfg.Datacenter
	}
	return &Subscriptions{f: f, cfg: cfg, logger: f.logger.Named("subscriptions"), subs: make(map[uint64]subState)}, nil
}

// Subscribe adds a subscription to req and returns its ID: SubscribeFrom
// with a Source holding a copy of req, and req.Index as the index.
func (s *Subscriptions) Subscribe(req stream.Request) uint64 {
	f := stream.Fixed(req)
	return s.SubscribeFrom(&f, req.Index)
}

// SubscribeFrom adds a subscription to what src gives and returns its ID.
// index may be the index of a result the caller already holds (the server
// then answers Resumed if it is current). src is asked again each time
// the subscription is re-sent (stream.Source). It never blocks on the
// network beyond one frame write; while disconnected the subscription is
// sent when the next stream opens.
func (s *Subscriptions) SubscribeFrom(src stream.Source, index uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	st := subState{src: src, index: index}
	s.subs[s.nextID] = st
	req := st.request(s.nextID, s.cfg.Datacenter)
	s.sendLocked(&req)
	return s.nextID
}

// Unsubscribe ends subscription id; events for it that are still in
// flight are not delivered.
func (s *Subscriptions) Unsubscribe(id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[id]; !ok {
		return
	}
	delete(s.subs, id)
	s.sendLocked(&stream.Request{Op: stream.OpUnsubscribe, ID: id})
}

// Len is the number of live subscriptions.
func (s *Subscriptions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// Connected reports whether a stream is open.
func (s *Subscriptions) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur != nil
}

// sendLocked writes r on the current stream, if any; a failed write closes
// the stream and Run reconnects (re-sending everything). s.mu held.
func (s *Subscriptions) sendLocked(r *stream.Request) {
	if s.cur == nil {
		return
	}
	if err := s.cur.Send(r); err != nil {
		s.logger.Debug("subscription stream write failed", zap.Error(err))
		s.cur.Close()
	}
}

// Run owns the stream until ctx ends or the forwarder closes; it returns
// nil then (an error only if called twice).
func (s *Subscriptions) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("forwarder: Subscriptions.Run called twice")
	}
	s.running = true
	s.mu.Unlock()

	var avoid *conn
	var backoff time.Duration
	for ctx.Err() == nil {
		c, err := s.f.acquire(ctx, avoid)
		if err != nil {
			if errors.Is(err, ErrClosed) || ctx.Err() != nil {
				return nil
			}
			avoid = nil
			continue // no server known yet: acquire waited; ask again
		}
		// The stream must not pin the session: a rebalance drains by
		// in-flight calls, and this stream would never end. When the
		// drained session closes, the stream dies and is re-opened on
		// the new one.
		s.f.release(c)
		err = s.serve(ctx, c)
		if ctx.Err() != nil {
			return nil
		}
		if c.sess.IsClosed() {
			avoid, backoff = c, 0
			continue
		}
		// A live session refused or broke the stream: pause, retry.
		s.logger.Debug("subscription stream failed on a live session", zap.String("server", c.addr), zap.Error(err))
		backoff = min(max(2*backoff, 25*time.Millisecond), maxStreamBackoff)
		var re rpc.RemoteError
		if errors.As(err, &re) && strings.Contains(re.Msg, "unknown method") {
			s.logger.Warn("server does not serve subscriptions (an older version, or ACLs enabled); asking again later", zap.String("server", c.addr), zap.Duration("retry", unsupportedRetry))
			if s.cfg.Unsupported != nil {
				s.cfg.Unsupported(err)
			}
			backoff = unsupportedRetry
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	return nil
}

// serve opens a stream on c, re-sends the subscriptions and delivers
// events until the stream ends.
func (s *Subscriptions) serve(ctx context.Context, c *conn) error {
	octx, cancel := context.WithTimeout(ctx, streamOpenTimeout)
	st, err := c.sess.OpenStream(octx, stream.MethodSubscribe, &stream.Hello{Datacenter: s.cfg.Datacenter})
	cancel()
	if err != nil {
		return err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Close() })
	defer stop()

	s.mu.Lock()
	s.cur = st
	ids := make([]uint64, 0, len(s.subs))
	for id := range s.subs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		r := s.subs[id].request(id, s.cfg.Datacenter)
		s.sendLocked(&r)
	}
	n := len(ids)
	s.mu.Unlock()
	s.logger.Info("forwarder: subscription stream open", zap.String("server", c.addr), zap.Int("subscriptions", n))
	if s.cfg.Up != nil {
		s.cfg.Up(c.addr)
	}
	defer func() {
		s.mu.Lock()
		if s.cur == st {
			s.cur = nil
		}
		s.mu.Unlock()
		if s.cfg.Down != nil && ctx.Err() == nil {
			s.cfg.Down(err)
		}
	}()

	for {
		var ev stream.Event
		if err = st.Recv(&ev); err != nil {
			return err
		}
		s.mu.Lock()
		sub, ok := s.subs[ev.ID]
		if ok {
			switch ev.Kind {
			case stream.KindSnapshot, stream.KindUpdate, stream.KindResumed:
				if ev.Index > sub.index {
					sub.index = ev.Index
					s.subs[ev.ID] = sub
				}
			case stream.KindError:
				delete(s.subs, ev.ID)
			}
		}
		s.mu.Unlock()
		if ok {
			s.cfg.Deliver(ev)
		}
	}
}
