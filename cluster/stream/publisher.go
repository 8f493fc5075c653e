package stream

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// State is what the publisher reads: a server's own state store (the
// current one: it changes on snapshot restore).
type State interface {
	CheckServiceNodes(service, tag string, passingOnly bool) (uint64, []structs.CheckServiceNode)
	Node(name string) (uint64, *structs.Node)
	// ServiceIndex and NodeIndex are the indexes those reads report,
	// without reading: a result already built at that index is reused.
	ServiceIndex(name string) uint64
	NodeIndex(name string) uint64
	// Index is the highest index of any write applied.
	Index() uint64
}

// Config configures a Publisher.
type Config struct {
	// Datacenter is the server's; subscriptions for others are refused.
	Datacenter string
	// State returns the current state store (required).
	State func() State
	// SendTimeout bounds writing one frame to a subscriber; one that does
	// not take it is dropped (DefaultSendTimeout).
	SendTimeout time.Duration
	// MaxSubscriptions bounds the live subscriptions of one session
	// (DefaultMaxSubscriptions).
	MaxSubscriptions int
	Logger           *zap.Logger
	Registry         prometheus.Registerer
}

// DefaultSendTimeout: a client agent reads its stream continuously; one
// that cannot take a frame for this long is stuck or overloaded, and
// re-snapshotting it later costs less than holding its backlog.
const DefaultSendTimeout = 10 * time.Second

// topicKey names what a change touches: a topic and a key.
type topicKey struct {
	topic Topic
	key   string
}

// Publisher fans changes out to subscribed sessions. Changed and Reset
// are called by the FSM; Serve runs one session's stream.
type Publisher struct {
	cfg     Config
	log     *zap.Logger
	metrics *metrics
	seed    maphash.Seed
	h       *codec.MsgpackHandle

	mu sync.RWMutex
	// byKey lists, per topic key, the sessions with at least one
	// subscription on it (and how many).
	byKey    map[topicKey]map[*session]int
	sessions map[*session]struct{}

	// memo holds the last result built per subscription shape, so N
	// sessions holding a key read and hash it once per change.
	memoMu sync.Mutex
	memo   map[memoKey]*memoSlot
}

// memoSlot holds the last result of one shape; mu makes concurrent
// senders of the same shape build it once.
type memoSlot struct {
	mu sync.Mutex
	e  *memoEntry
}

// memoKey is a subscription's shape: its key and filters.
type memoKey struct {
	key     topicKey
	tag     string
	passing bool
}

// memoEntry is one built result: valid while the store and the key's
// index are the ones it was built from.
type memoEntry struct {
	st   State
	idx  uint64
	body []byte // msgpack of the result (Health or Node); shared, read-only
	hash uint64
}

// maxMemo bounds the memo: each entry is one key's result set (the rows
// are shared with the state store); past it the memo starts over.
const maxMemo = 4096

// NewPublisher returns a Publisher; register Serve as the MethodSubscribe
// stream handler and feed it Changed and Reset.
func NewPublisher(cfg Config) (*Publisher, error) {
	if cfg.State == nil {
		return nil, errors.New("stream: publisher needs State")
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	if cfg.MaxSubscriptions <= 0 {
		cfg.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Publisher{
		cfg: cfg, log: cfg.Logger, metrics: newMetrics(cfg.Registry),
		seed: maphash.MakeSeed(), h: canonicalHandle(),
		byKey:    make(map[topicKey]map[*session]int),
		sessions: make(map[*session]struct{}),
		memo:     make(map[memoKey]*memoSlot),
	}, nil
}

// Changed is the state store's commit hook: the write at idx touched
// services and nodes (names may repeat). It marks the sessions subscribed
// to them and returns; it never blocks on a session.
func (p *Publisher) Changed(idx uint64, services, nodes []string) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if len(p.byKey) == 0 {
		return
	}
	for _, name := range services {
		for s := range p.byKey[topicKey{TopicServiceHealth, name}] {
			s.mark(topicKey{TopicServiceHealth, name})
		}
	}
	for _, name := range nodes {
		for s := range p.byKey[topicKey{TopicNode, name}] {
			s.mark(topicKey{TopicNode, name})
		}
	}
}

// Reset re-checks every subscription: the state store was replaced
// (snapshot restore), so any key may have changed.
func (p *Publisher) Reset() {
	p.memoMu.Lock()
	clear(p.memo) // built from the old store: let it go
	p.memoMu.Unlock()
	p.mu.RLock()
	defer p.mu.RUnlock()
	for s := range p.sessions {
		s.markAll()
	}
}

// Serve is the rpc.StreamHandler of MethodSubscribe: it runs one client
// session's subscription stream until the stream or ctx ends.
func (p *Publisher) Serve(ctx context.Context, dec rpc.Decoder, open func() (*rpc.Stream, error)) error {
	var hello Hello
	if err := dec.Decode(&hello); err != nil {
		return fmt.Errorf("stream: bad hello: %w", err)
	}
	if hello.Datacenter != "" && hello.Datacenter != p.cfg.Datacenter {
		return fmt.Errorf("stream: subscriptions are served for datacenter %q only, not %q (field Datacenter)", p.cfg.Datacenter, hello.Datacenter)
	}
	st, err := open()
	if err != nil {
		return err
	}
	st.SetWriteTimeout(p.cfg.SendTimeout)
	s := newSession(ctx, p, st)
	p.mu.Lock()
	p.sessions[s] = struct{}{}
	p.mu.Unlock()
	p.metrics.sessions.Inc()
	defer func() {
		p.removeSession(s)
		p.metrics.sessions.Dec()
	}()
	return s.run()
}

// addSub indexes s under k.
func (p *Publisher) addSub(s *session, k topicKey) {
	p.mu.Lock()
	m := p.byKey[k]
	if m == nil {
		m = make(map[*session]int)
		p.byKey[k] = m
	}
	m[s]++
	p.mu.Unlock()
	p.metrics.subscriptions.Inc()
}

// removeSub drops one of s's subscriptions on k from the index.
func (p *Publisher) removeSub(s *session, k topicKey) {
	p.mu.Lock()
	if m := p.byKey[k]; m != nil {
		if m[s]--; m[s] <= 0 {
			delete(m, s)
		}
		if len(m) == 0 {
			delete(p.byKey, k)
		}
	}
	p.mu.Unlock()
	p.metrics.subscriptions.Dec()
}

func (p *Publisher) removeSession(s *session) {
	s.mu.Lock()
	subs := s.subs
	s.subs = nil
	s.mu.Unlock()
	for _, sub := range subs {
		p.removeSub(s, sub.key)
	}
	p.mu.Lock()
	delete(p.sessions, s)
	p.mu.Unlock()
}

// result returns the current result of sub, encoded, with its hash: built
// once per change of the key and shared by every subscription of the same
// shape.
func (p *Publisher) result(st State, sub *subscription) (*memoEntry, error) {
	mk := memoKey{sub.key, sub.tag, sub.passing}
	var idx uint64
	switch sub.key.topic {
	case TopicServiceHealth:
		idx = st.ServiceIndex(sub.key.key)
	case TopicNode:
		idx = st.NodeIndex(sub.key.key)
	}
	p.memoMu.Lock()
	slot := p.memo[mk]
	if slot == nil {
		if len(p.memo) >= maxMemo {
			clear(p.memo)
		}
		slot = &memoSlot{}
		p.memo[mk] = slot
	}
	p.memoMu.Unlock()
	slot.mu.Lock()
	defer slot.mu.Unlock()
	if m := slot.e; m != nil && m.st == st && m.idx == idx {
		return m, nil
	}
	var v any
	switch sub.key.topic {
	case TopicServiceHealth:
		var h []structs.CheckServiceNode
		idx, h = st.CheckServiceNodes(sub.key.key, sub.tag, sub.passing)
		v = h
	case TopicNode:
		var n *structs.Node
		idx, n = st.Node(sub.key.key)
		v = n
	}
	var buf []byte
	if err := codec.NewEncoderBytes(&buf, p.h).Encode(v); err != nil {
		return nil, fmt.Errorf("stream: encode %s %q: %w", sub.key.topic, sub.key.key, err)
	}
	m := &memoEntry{st: st, idx: idx, body: buf, hash: maphash.Bytes(p.seed, buf)}
	slot.e = m
	return m, nil
}

// canonicalHandle encodes maps in key order, so equal results hash equal.
func canonicalHandle() *codec.MsgpackHandle {
	h := structs.MsgpackHandle()
	h.Canonical = true
	return h
}
