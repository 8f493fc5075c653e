package cache

import (
	"time"

	"github.com/cairnd/cairn/cluster/stream"
	"go.uber.org/zap"
)

// Push refresh by subscription (the default, RefreshSubscribe): every
// cached key of the local datacenter with a non-timed answer holds one
// subscription on the forwarder's stream (see cluster/stream). Each event
// replaces the entry, so its version moves and the resolver drops the
// packed answers built from that key only; an answer equal to the one
// held keeps the version. Removing an entry (idle, trimmed, replaced)
// unsubscribes it. No read RPC follows a change.

// Subscriber opens and ends subscriptions on the server tier:
// forwarder.Subscriptions on client agents, whose events are handed to
// Catalog.Deliver, Down and Up.
type Subscriber interface {
	// SubscribeFrom subscribes to what src gives (asked again whenever
	// the subscription is re-sent), resuming from index.
	SubscribeFrom(src stream.Source, index uint64) uint64
	Unsubscribe(id uint64)
}

// RefreshMode says how hot entries are kept current.
type RefreshMode uint8

// Refresh modes.
const (
	// RefreshSubscribe: one subscription per cached local key, events
	// pushed by the servers (needs Config.Subscriber).
	RefreshSubscribe RefreshMode = iota
	// RefreshIndexWatch: the old mode, one blocking query on the catalog
	// index and a refetch round of every hot key on each move (refresh.go);
	// kept for comparison (bench fleet_reads_per_change_index_watch).
	RefreshIndexWatch
)

// String names the mode.
func (m RefreshMode) String() string {
	if m == RefreshIndexWatch {
		return "index-watch"
	}
	return "subscribe"
}

func (c *Catalog) subscribing() bool {
	return c.cfg.Refresh == RefreshSubscribe && c.cfg.Subscriber != nil && !c.fallback.Load()
}

// Unsupported switches to the index watch for good: a server does not
// serve subscriptions (rolling upgrade), so pushes cannot be relied on.
// Keys subscribed so far are refreshed by the watch's rounds from now on.
func (c *Catalog) Unsupported(err error) {
	if c.cfg.Refresh != RefreshSubscribe || c.cfg.Subscriber == nil || !c.fallback.CompareAndSwap(false, true) {
		return
	}
	c.log.Warn("servers do not serve subscriptions; falling back to the index watch", zap.Error(err))
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.watchIndex()
	}()
}

// subscribe opens e's subscription from the index of the answer it holds;
// the server answers Resumed if nothing changed since the fetch, or a
// fresh snapshot if something did (so no change between the fetch and the
// subscription is missed).
func (c *Catalog) subscribe(e *entry, v *value) {
	if e.key.kind != kindService && e.key.kind != kindNode {
		return
	}
	// Held across SubscribeFrom so Deliver cannot see an event for the ID
	// before the ID is mapped to e.
	c.subMu.Lock()
	if e.is(entryRemoved) {
		c.subMu.Unlock()
		return
	}
	id := c.cfg.Subscriber.SubscribeFrom(e, v.index)
	c.subs[id] = e
	e.subID.Store(id)
	c.subMu.Unlock()
	c.metrics.watched.Inc()
}

// Subscription implements stream.Source: what e subscribes to, from its
// key alone (immutable), so the forwarder need not keep a copy.
func (e *entry) Subscription() stream.Request {
	if e.key.kind == kindService {
		return stream.Request{Topic: stream.TopicServiceHealth, Key: e.key.name, Tag: e.key.tag, PassingOnly: e.key.passing}
	}
	return stream.Request{Topic: stream.TopicNode, Key: e.key.name}
}

// unsubscribe ends e's subscription, if any. Called once e is removed.
func (c *Catalog) unsubscribe(e *entry) {
	if c.cfg.Subscriber == nil {
		return
	}
	c.subMu.Lock()
	id := e.subID.Swap(0)
	if id != 0 {
		delete(c.subs, id)
	}
	c.subMu.Unlock()
	if id != 0 {
		c.cfg.Subscriber.Unsubscribe(id)
		c.metrics.watched.Dec()
	}
}

// Deliver applies one subscription event (forwarder.Subscriptions calls
// it, in stream order).
func (c *Catalog) Deliver(ev stream.Event) {
	c.subMu.Lock()
	e := c.subs[ev.ID]
	if e != nil && ev.Kind == stream.KindError {
		delete(c.subs, ev.ID)
		e.subID.Store(0)
	}
	c.subMu.Unlock()
	if e == nil || e.is(entryRemoved) {
		return
	}
	now := time.Now().UnixNano()
	switch ev.Kind {
	case stream.KindResumed:
		e.lastOK.Store(now)
		e.set(entryStale, false)
	case stream.KindSnapshot, stream.KindUpdate:
		v := &value{index: ev.Index}
		switch e.key.kind {
		case kindService:
			v.insts = appendInstances(nil, ev.Health, c.cfg.Datacenter)
		case kindNode:
			v.more = &moreValue{}
			if ev.Node != nil {
				n := toNode(ev.Node)
				v.more.node = &n
			}
		}
		e.lastOK.Store(now)
		e.set(entryStale, false)
		cur := e.val.Load()
		if cur != nil && ev.Kind == stream.KindUpdate && v.index <= cur.index {
			return
		}
		c.replace(e, cur, v)
		c.metrics.pushed.Inc()
	case stream.KindError:
		// Refused (e.g. the server's subscription limit): the entry is
		// dropped and fetched again when next asked.
		c.log.Debug("subscription refused; key falls back to fetch on next ask", zap.String("key", e.key.name), zap.String("error", ev.Error))
		c.metrics.watched.Dec()
		c.remove(e)
	}
}

// Down notes that the subscription stream is lost: entries stay served
// (they were current when it broke) and, past MaxStale, expire; the
// resume on the next stream brings what changed meanwhile.
func (c *Catalog) Down(err error) {
	c.watchOK.Store(time.Now().UnixNano())
	c.streamUp.Store(false)
}

// Up notes that the stream is open again and every subscription re-sent.
func (c *Catalog) Up(server string) {
	c.streamUp.Store(true)
	c.watchOK.Store(time.Now().UnixNano())
}
