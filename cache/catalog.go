package cache

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/resolver"
	"go.uber.org/zap"

	"github.com/prometheus/client_golang/prometheus"
)

// RPCFunc sends one read RPC to the server tier (the forwarder on clients).
type RPCFunc func(ctx context.Context, method string, args, reply any) error

type kind uint8

const (
	kindService kind = iota
	kindNode
	kindNodes
	kindQuery // a prepared query's results; name is its ID or name
)

// key names one cached answer. The small fields sit together, so a key
// is 56 bytes. Shards index entries by its 64-bit hash (keyHash), not by
// the key itself: a map slot is 16 bytes, not 64.
type key struct {
	dc      string
	name    string
	tag     string
	kind    kind
	passing bool
}

// value is one server answer; immutable once published.
type value struct {
	index uint64
	insts []resolver.Instance
	// expires (unix nanos) is set on negative answers to cold misses.
	expires int64
	// more holds what only the rarer kinds answer (nil for a service's
	// instances, which a client agent holds one of per name): a value is
	// 48 bytes, not 96.
	more *moreValue
}

// moreValue is the part of a value only node, nodes and prepared query
// keys carry.
type moreValue struct {
	node  *resolver.Node
	nodes []resolver.Node
	// query is what a prepared query said about insts (kindQuery only).
	query resolver.QueryAnswer
}

// extra is v's moreValue, zero for a service's value.
func (v *value) extra() moreValue {
	if v.more == nil {
		return moreValue{}
	}
	return *v.more
}

func (v *value) empty() bool {
	m := v.extra()
	return len(v.insts) == 0 && m.node == nil && len(m.nodes) == 0
}

// entry is one cached answer. A client agent holds one per name it was
// asked, so it is kept small: no per-entry channel (identical misses wait
// on one from shard.waits, made only when a second asker comes).
type entry struct {
	key key
	cat *Catalog
	// err is the first fetch's error, if it failed; read once filled. A
	// pointer, as failed entries are few and short-lived: the entry is
	// then 128 bytes (TestEntrySize), a size class down from 144.
	err *error

	val     atomic.Pointer[value]
	version atomic.Uint64 // moves on every replacement and on removal
	lastHit atomic.Int64  // coarse clock (unix nanos)
	lastOK  atomic.Int64  // unix nanos of the last answer from a server
	subID   atomic.Uint64 // live subscription (0: none); set under Catalog.subMu
	// next chains entries whose keys share a 64-bit hash (shard.find);
	// under the shard's mu.
	next  *entry
	flags atomic.Uint32 // entryFilled, entryStale, entryRemoved
}

// An entry's flags, each set and read on its own (atomically).
const (
	entryFilled  uint32 = 1 << iota // the first fetch ended (err or val is set)
	entryStale                      // the last refresh failed
	entryRemoved                    // dropped from its shard
)

// is reports whether flag f is set.
func (e *entry) is(f uint32) bool { return e.flags.Load()&f != 0 }

// set sets flag f to on (a read, and a write only if it changes).
func (e *entry) set(f uint32, on bool) {
	switch {
	case e.is(f) == on:
	case on:
		e.flags.Or(f)
	default:
		e.flags.And(^f)
	}
}

// Limits.
const (
	// numShards spreads keys so concurrent hits on different keys never
	// share a lock; a power of two for a cheap mask.
	numShards = 64
	// evictSlack lets the entry count run this far over MaxEntries before
	// an insert evicts synchronously; the janitor trims the rest.
	evictSlack = 64
	// clockTick is the resolution of the hit clock: idle detection needs
	// seconds, not nanoseconds, and a coarse clock keeps time.Now off the
	// hit path.
	clockTick = 100 * time.Millisecond
	// janitorEvery is how often the entry bound is enforced.
	janitorEvery = time.Second
	// quietTicks without a question put the janitor to sleep (evict.go).
	quietTicks = 10
	// minWatchBackoff and maxWatchBackoff bound the pause after a failed
	// blocking query, so a dead tier is not hammered and a live one is
	// found again within a second.
	minWatchBackoff = 50 * time.Millisecond
	maxWatchBackoff = time.Second
	// watchGrace is added to WatchWait for the RPC deadline: the server
	// holds the query for up to WatchWait (plus its jitter).
	watchGrace = 15 * time.Second
	// hotWindow: when the catalog index moves, keys hit within it are
	// fetched again at once (push refresh); older ones are dropped and
	// fetched when next asked. Every hot key costs a fetch per catalog
	// change and delays the rest of the round: a second-old miss is cheaper
	// than refreshing keys nobody is asking for.
	hotWindow = 2 * time.Second
	// refreshWorkers bounds the fetches of one refresh round.
	refreshWorkers = 16
	// indexProbe is the service the index watch asks for. No such service
	// exists: the answer is empty and carries the catalog index
	// max(nodes, services, checks), the index every Health.ServiceNodes,
	// Catalog.NodeServices and Catalog.ListNodes answer is at or below.
	indexProbe = "_cairn-catalog-index"
)

type shard struct {
	mu sync.RWMutex
	// m holds the entries by keyHash; keys whose hashes collide chain
	// through entry.next. Use find, add and drop, under mu.
	m map[uint64]*entry
	// waits holds, for each entry whose first fetch is still running and
	// has a second asker, the channel closed when it ends; under mu.
	waits map[*entry]chan struct{}
}

// find returns k's entry (h is keyHash(k)), or nil; under s.mu.
func (s *shard) find(h uint64, k *key) *entry {
	for e := s.m[h]; e != nil; e = e.next {
		if e.key == *k {
			return e
		}
	}
	return nil
}

// add inserts e (h is keyHash of its key), which must not be there; under
// s.mu held for writing.
func (s *shard) add(h uint64, e *entry) {
	e.next = s.m[h]
	s.m[h] = e
}

// drop removes e (h is keyHash of its key) and reports whether it was
// there; under s.mu held for writing.
func (s *shard) drop(h uint64, e *entry) bool {
	head := s.m[h]
	if head == e {
		if e.next == nil {
			delete(s.m, h)
		} else {
			s.m[h] = e.next
		}
		e.next = nil
		return true
	}
	for p := head; p != nil; p = p.next {
		if p.next == e {
			p.next, e.next = e.next, nil
			return true
		}
	}
	return false
}

// each calls f for every entry of s; under s.mu.
func (s *shard) each(f func(e *entry)) {
	for _, head := range s.m {
		for e := head; e != nil; e = e.next {
			f(e)
		}
	}
}

// awaitFill waits until e's first fetch ended, or ctx ends.
func (s *shard) awaitFill(ctx context.Context, e *entry) error {
	s.mu.Lock()
	if e.is(entryFilled) {
		s.mu.Unlock()
		return nil
	}
	ch := s.waits[e]
	if ch == nil {
		if s.waits == nil {
			s.waits = make(map[*entry]chan struct{})
		}
		ch = make(chan struct{})
		s.waits[e] = ch
	}
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// markFilled records that e's first fetch ended and wakes its waiters.
// filled is set before the lock is taken: a waiter that checks it under
// the lock after that sees it set; one that registered before is woken.
func (s *shard) markFilled(e *entry) {
	e.set(entryFilled, true)
	s.mu.Lock()
	ch := s.waits[e]
	delete(s.waits, e)
	s.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// Catalog implements resolver.Catalog for client agents.
type Catalog struct {
	cfg     Config
	rpc     RPCFunc
	src     Source // fetches go through it, always to the server tier
	log     *zap.Logger
	metrics *metrics
	seed    maphash.Seed
	shards  [numShards]shard
	count   atomic.Int64
	fills   atomic.Uint64 // values stored: fills, refreshes, pushes (memory.go)
	hits    atomic.Uint64
	clock   atomic.Int64
	outage  atomic.Bool
	// The janitor's sleep (evict.go): active is set by the first hit of
	// each clock tick, asleep while the janitor waits out an idle spell,
	// wakeCh (buffered, 1) is how the first hit after one wakes it.
	active atomic.Bool
	asleep atomic.Bool
	wakeCh chan struct{}
	// index is the catalog index last seen by the index watch; watchOK
	// (unix nanos) its last answer.
	index   atomic.Uint64
	watchOK atomic.Int64

	// Subscriptions (subscribe.go): entries by subscription ID, and
	// whether the stream is up (watchOK then holds when it went down).
	subMu    sync.Mutex
	subs     map[uint64]*entry
	streamUp atomic.Bool
	fallback atomic.Bool // Unsupported: the index watch runs instead

	// packedHits are the resolver's counts of questions answered from
	// packed bytes built from our entries: they count as hits.
	srcMu      sync.Mutex
	packedHits []func() uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// CountPackedHits implements resolver.PackedCatalog: total is counted in
// cairn_cache_hits_total and cairn_cache_wire_hits_total.
func (c *Catalog) CountPackedHits(total func() uint64) {
	c.srcMu.Lock()
	c.packedHits = append(c.packedHits, total)
	c.srcMu.Unlock()
}

func (c *Catalog) wireHits() uint64 {
	c.srcMu.Lock()
	defer c.srcMu.Unlock()
	var n uint64
	for _, f := range c.packedHits {
		n += f()
	}
	return n
}

var _ resolver.PackedCatalog = (*Catalog)(nil)

// New returns a running Catalog; Close stops its watches. reg may be nil.
func New(cfg Config, rpc RPCFunc, logger *zap.Logger, reg prometheus.Registerer) (*Catalog, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rpc == nil {
		return nil, errors.New("cache: nil rpc")
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	c := &Catalog{cfg: cfg, rpc: rpc, log: logger, seed: maphash.MakeSeed(),
		src: Source{Datacenter: cfg.Datacenter, RPC: rpc, AllowStale: true, NodeName: cfg.NodeName}, subs: make(map[uint64]*entry),
		wakeCh: make(chan struct{}, 1)}
	m, err := newMetrics(reg, func() float64 { return float64(c.hits.Load() + c.wireHits()) }, func() float64 { return float64(c.wireHits()) })
	if err != nil {
		return nil, err
	}
	c.metrics = m
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]*entry)
	}
	c.clock.Store(time.Now().UnixNano())
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.janitor()
	}()
	if !c.subscribing() {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.watchIndex()
		}()
	}
	return c, nil
}

// Close stops every watch and waits for them.
func (c *Catalog) Close() error {
	c.cancel()
	c.wg.Wait()
	return nil
}

// locate returns k's shard and its index there (keyHash): one hash of
// the whole key picks both.
func (c *Catalog) locate(k *key) (*shard, uint64) {
	h := c.keyHash(k)
	return &c.shards[h&(numShards-1)], h
}

// keyHash is k's index in its shard's map: every field of k, hashed.
func (c *Catalog) keyHash(k *key) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(k.dc)
	h.WriteByte(0)
	h.WriteString(k.name)
	h.WriteByte(0)
	h.WriteString(k.tag)
	h.WriteByte(byte(k.kind))
	if k.passing {
		h.WriteByte(1)
	}
	return h.Sum64()
}

// usable reports whether v may answer now, given e's staleness.
func (c *Catalog) usable(e *entry, v *value, now int64) bool {
	if v.expires != 0 && now > v.expires {
		return false
	}
	if (e.is(entryStale) || c.outage.Load()) && now-c.lastOK(e) > int64(c.cfg.MaxStale) {
		return false
	}
	return true
}

// lastOK is when a server last confirmed e: its own fetch, or for keys of
// the local datacenter the index watch's last answer.
func (c *Catalog) lastOK(e *entry) int64 {
	ok := e.lastOK.Load()
	if c.subscribing() {
		// A live stream confirms every subscribed entry continuously.
		if e.key.dc == c.cfg.Datacenter && e.subID.Load() != 0 && c.streamUp.Load() {
			return c.clock.Load()
		}
		return max(ok, c.watchOK.Load())
	}
	if e.key.dc == c.cfg.Datacenter {
		ok = max(ok, c.watchOK.Load())
	}
	return ok
}

// get returns the current value for k, fetching it on a miss.
func (c *Catalog) get(ctx context.Context, k key) (*value, error) {
	c.touch()
	if k.dc == "" {
		k.dc = c.cfg.Datacenter
	}
	s, h := c.locate(&k)
	// Bounded: a second round only follows an entry found unusable or
	// failed, which is then replaced by our own fetch.
	for attempt := 0; attempt < 3; attempt++ {
		s.mu.RLock()
		e := s.find(h, &k)
		s.mu.RUnlock()
		if e != nil {
			if !e.is(entryFilled) {
				c.metrics.coalesced.Inc()
				if err := s.awaitFill(ctx, e); err != nil {
					return nil, err
				}
				if e.err != nil {
					return nil, *e.err
				}
				return c.load(ctx, e), nil
			}
			ver := e.version.Load() // before the value: see resolver.NoteDep
			if v := e.val.Load(); v != nil {
				now := c.clock.Load()
				if c.usable(e, v, now) {
					c.hit(e, now)
					resolver.NoteDep(ctx, e, depVersion(e, v, ver))
					return v, nil
				}
			}
			c.remove(e)
			continue
		}
		// Miss: publish a pending entry so identical misses wait for ours.
		// Its key keeps copies of name and tag: the resolver's are slices
		// of the whole question name, which the entry would otherwise
		// hold for as long as it lives.
		ne := &entry{key: k, cat: c}
		ne.key.name, ne.key.tag = strings.Clone(k.name), strings.Clone(k.tag)
		ne.lastHit.Store(c.clock.Load())
		s.mu.Lock()
		if s.find(h, &k) != nil {
			s.mu.Unlock()
			continue
		}
		s.add(h, ne)
		s.mu.Unlock()
		if n := c.count.Add(1); n > int64(c.cfg.MaxEntries+evictSlack) {
			c.trim(c.cfg.MaxEntries)
		}
		c.metrics.entries.Inc()
		c.metrics.misses.Inc()
		v, ver, err := c.fill(ne)
		if err == nil {
			resolver.NoteDep(ctx, ne, depVersion(ne, v, ver))
		}
		return v, err
	}
	return nil, fmt.Errorf("cache: %s %q: entry kept changing", kindName(k.kind), k.name)
}

func (c *Catalog) hit(e *entry, now int64) {
	if now-e.lastHit.Load() > int64(clockTick) {
		e.lastHit.Store(now) // written at most once per tick per key
	}
	c.hits.Add(1)
	if e.is(entryStale) || c.outage.Load() {
		c.metrics.staleHits.Inc()
	}
}

// load returns the value of an entry whose first fetch ended, noting it as
// a Dep of the answer being built under ctx.
func (c *Catalog) load(ctx context.Context, e *entry) *value {
	ver := e.version.Load()
	v := e.val.Load()
	resolver.NoteDep(ctx, e, depVersion(e, v, ver))
	return v
}

// depVersion is the version to tie a packed answer built from v to: 0
// (keep nothing) for an empty or dropped entry, whose answer carries a
// timed SOA or is fetched again on the next ask.
func depVersion(e *entry, v *value, ver uint64) uint64 {
	if v == nil || v.empty() || e.is(entryRemoved) {
		return 0
	}
	return ver
}

// Version implements resolver.Dep.
func (e *entry) Version() uint64 {
	return depVersion(e, e.val.Load(), e.version.Load())
}

// Serve implements resolver.Dep: on every packed hit, the same checks
// and bookkeeping as a hit through get (freshness, max_stale during an
// outage, the stale-hit count, the hit clock), without allocating.
func (e *entry) Serve(ver uint64) bool {
	if e.version.Load() != ver {
		return false
	}
	c := e.cat
	c.touch()
	now := c.clock.Load()
	v := e.val.Load()
	if v == nil || v.expires != 0 && now > v.expires {
		return false // a timed answer (other datacenter) past its TTL
	}
	if c.outage.Load() || e.is(entryStale) {
		if !c.usable(e, v, now) {
			return false
		}
		c.metrics.staleHits.Inc()
	}
	if now-e.lastHit.Load() > int64(clockTick) {
		e.lastHit.Store(now)
	}
	return true
}

// fill runs the first fetch of e; it returns the value and its version.
func (c *Catalog) fill(e *entry) (*value, uint64, error) {
	timeout := c.cfg.FetchTimeout
	if c.outage.Load() {
		timeout = c.cfg.OutageFetchTimeout
	}
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
	watched := c.index.Load()
	v, err := c.fetch(ctx, e.key, 0)
	cancel()
	if err != nil {
		if !errors.Is(err, resolver.ErrNoSuchDatacenter) {
			c.markOutage(err)
		}
		e.err = &err
		s, _ := c.locate(&e.key)
		s.markFilled(e)
		c.remove(e)
		return nil, 0, err
	}
	c.markUp()
	if v.empty() && c.cfg.NegativeTTL > 0 {
		v.expires = time.Now().Add(c.cfg.NegativeTTL).UnixNano()
	}
	local := e.key.dc == c.cfg.Datacenter
	// Pushed: kept current by the index watch or a subscription. Only
	// services and nodes have subscription topics: the node list and
	// prepared queries are served for UnwatchedTTL, then fetched again.
	pushed := local && (!c.subscribing() || e.key.kind == kindService || e.key.kind == kindNode)
	if !v.empty() && !pushed {
		// Other datacenters have no index watch here: served for
		// UnwatchedTTL, then fetched again.
		v.expires = time.Now().Add(c.cfg.UnwatchedTTL).UnixNano()
	}
	ver := c.replace(e, nil, v)
	e.lastOK.Store(time.Now().UnixNano())
	s, _ := c.locate(&e.key)
	s.markFilled(e)
	if v.empty() && c.cfg.NegativeTTL <= 0 {
		c.remove(e) // no negative caching: the next ask fetches again
		return v, ver, nil
	}
	if local && v.expires == 0 && c.subscribing() {
		c.subscribe(e, v)
		return v, ver, nil
	}
	if now := c.index.Load(); local && v.expires == 0 && now > watched && v.index < now {
		// The catalog moved while e was being fetched and the answer is
		// below the new index: the refresh round of that index skipped e,
		// pending. (An answer below the index alone proves nothing: it
		// carries its service's own index, at or below the catalog's.)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.refresh(e)
		}()
	}
	return v, ver, nil
}

// ServiceNodes implements resolver.Catalog.
func (c *Catalog) ServiceNodes(ctx context.Context, dc, service, tag string, passingOnly bool, dst []resolver.Instance) ([]resolver.Instance, error) {
	v, err := c.get(ctx, key{dc: dc, kind: kindService, name: service, tag: tag, passing: passingOnly})
	if err != nil {
		return dst, err
	}
	return append(dst, v.insts...), nil
}

// Node implements resolver.Catalog.
func (c *Catalog) Node(ctx context.Context, dc, name string) (*resolver.Node, error) {
	v, err := c.get(ctx, key{dc: dc, kind: kindNode, name: name})
	if err != nil {
		return nil, err
	}
	n := v.extra().node
	if n == nil {
		return nil, nil
	}
	cp := *n
	return &cp, nil
}

// Nodes implements resolver.Catalog.
func (c *Catalog) Nodes(ctx context.Context, dc string) ([]resolver.Node, error) {
	v, err := c.get(ctx, key{dc: dc, kind: kindNodes})
	if err != nil {
		return nil, err
	}
	return v.extra().nodes, nil
}

// ServicesByAddress implements resolver.Catalog. Reverse lookups of
// service addresses are rare: the service list is fetched each time, the
// instances come from the cache.
func (c *Catalog) ServicesByAddress(ctx context.Context, dc, addr string) ([]resolver.Instance, error) {
	if dc == "" {
		dc = c.cfg.Datacenter
	}
	fctx, cancel := context.WithTimeout(ctx, c.cfg.FetchTimeout)
	services, err := c.src.services(fctx, dc, structs.QueryOptions{AllowStale: true})
	cancel()
	if err != nil {
		return nil, err
	}
	return servicesByAddress(ctx, services, addr, func(ctx context.Context, name string) ([]resolver.Instance, error) {
		return c.ServiceNodes(ctx, dc, name, "", false, nil)
	})
}

// PreparedQuery implements resolver.QueryCatalog: query results are
// cached like a service's, refreshed when the local catalog moves.
func (c *Catalog) PreparedQuery(ctx context.Context, dc, name string, dst []resolver.Instance) ([]resolver.Instance, resolver.QueryAnswer, error) {
	v, err := c.get(ctx, key{dc: dc, kind: kindQuery, name: name})
	if err != nil {
		return dst, resolver.QueryAnswer{TTL: -1}, err
	}
	return append(dst, v.insts...), v.extra().query, nil
}

// Len returns the number of cached keys.
func (c *Catalog) Len() int { return int(c.count.Load()) }
