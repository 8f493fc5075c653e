package cache

import (
	"cmp"
	"context"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
	"go.uber.org/zap"
)

// How cached entries stay current: one blocking query on the catalog index
// triggers refresh rounds, and every server request goes through fetch.

// watchIndex holds one blocking query on the catalog index of the local
// datacenter for the Catalog's lifetime; every move triggers a refresh
// round. One stream, one goroutine, whatever the number of keys.
func (c *Catalog) watchIndex() {
	var backoff time.Duration
	var idx uint64
	for c.ctx.Err() == nil {
		q := structs.QueryOptions{AllowStale: true, MinQueryIndex: idx}
		if idx > 0 {
			q.MaxQueryTime = c.cfg.WatchWait
		}
		var out structs.IndexedCheckServiceNodes
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.WatchWait+watchGrace)
		err := c.rpc(ctx, structs.MethodHealthServiceNodes, &structs.ServiceSpecificRequest{
			Datacenter: c.cfg.Datacenter, ServiceName: indexProbe, QueryOptions: q,
		}, &out)
		cancel()
		if c.ctx.Err() != nil {
			return
		}
		if err != nil {
			if idx > 0 { // not while the agent is still finding its servers
				c.markOutage(err)
			}
			backoff = min(max(2*backoff, minWatchBackoff), maxWatchBackoff)
			if !c.sleep(backoff) {
				return
			}
			continue
		}
		backoff = 0
		c.watchOK.Store(time.Now().UnixNano())
		if idx > 0 {
			c.markUp()
		}
		if out.Index == idx {
			continue // the wait ran out
		}
		idx = max(out.Index, 1)
		c.index.Store(idx)
		c.refreshRound(idx)
	}
}

// refreshRound fetches again every hot local key answered below idx and
// drops the cold ones; at most refreshWorkers fetches run at once.
func (c *Catalog) refreshRound(idx uint64) {
	now := c.clock.Load()
	var hot, cold []*entry
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		s.each(func(e *entry) {
			v := e.val.Load()
			if v == nil || v.expires != 0 || v.index >= idx || e.key.dc != c.cfg.Datacenter {
				return // pending, timed (negative or other-dc), or current
			}
			if now-e.lastHit.Load() <= int64(hotWindow) {
				hot = append(hot, e)
			} else {
				cold = append(cold, e)
			}
		})
		s.mu.RUnlock()
	}
	for _, e := range cold {
		c.remove(e)
	}
	c.metrics.watched.Set(float64(len(hot)))
	if len(hot) == 0 {
		return
	}
	// Most recently hit first: the keys being asked right now are the
	// ones whose staleness someone would see.
	last := make(map[*entry]int64, len(hot))
	for _, e := range hot {
		last[e] = e.lastHit.Load()
	}
	slices.SortFunc(hot, func(a, b *entry) int { return cmp.Compare(last[b], last[a]) })
	work := make(chan *entry)
	var wg sync.WaitGroup
	for range min(refreshWorkers, len(hot)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range work {
				c.refresh(e)
			}
		}()
	}
	for _, e := range hot {
		if c.ctx.Err() != nil {
			break
		}
		work <- e
	}
	close(work)
	wg.Wait()
}

// refresh fetches e again and publishes the answer; the version (and so
// every packed answer built from e) moves only if the answer changed.
func (c *Catalog) refresh(e *entry) {
	if e.is(entryRemoved) {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.FetchTimeout)
	v, err := c.fetch(ctx, e.key, 0)
	cancel()
	if err != nil {
		if c.ctx.Err() == nil {
			e.set(entryStale, true)
			c.markOutage(err)
		}
		return
	}
	e.lastOK.Store(time.Now().UnixNano())
	e.set(entryStale, false)
	c.markUp()
	cur := e.val.Load()
	if cur != nil && v.index <= cur.index {
		return
	}
	c.replace(e, cur, v)
}

// replace publishes v as e's value in place of cur (nil: none) and counts
// it as a fill (memory.go); the version, and so every packed answer built
// from e, moves only if the answer changed. It returns e's version.
func (c *Catalog) replace(e *entry, cur, v *value) uint64 {
	same := cur != nil && sameValue(cur, v)
	e.val.Store(v)
	c.fills.Add(1)
	if same {
		return e.version.Load()
	}
	return e.version.Add(1)
}

func sameValue(a, b *value) bool {
	am, bm := a.extra(), b.extra()
	return a.expires == b.expires && am.query == bm.query && reflect.DeepEqual(a.insts, b.insts) &&
		reflect.DeepEqual(am.node, bm.node) && reflect.DeepEqual(am.nodes, bm.nodes)
}

// markOutage notes that a server request failed: from now on hits count as
// stale and misses get one short try. Logged once per outage.
func (c *Catalog) markOutage(err error) {
	if c.outage.CompareAndSwap(false, true) {
		c.log.Warn("no server answers; serving cached entries stale", zap.Duration("max_stale", c.cfg.MaxStale), zap.Error(err))
	}
}

func (c *Catalog) markUp() {
	if c.outage.CompareAndSwap(true, false) {
		c.log.Info("servers answer again; fresh answers resumed")
	}
}

func (c *Catalog) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

func kindName(k kind) string {
	switch k {
	case kindService:
		return "service"
	case kindNode:
		return "node"
	case kindQuery:
		return "query"
	}
	return "nodes"
}

// fetch asks the server tier for k; minIndex > 0 makes it a blocking query.
func (c *Catalog) fetch(ctx context.Context, k key, minIndex uint64) (*value, error) {
	q := structs.QueryOptions{AllowStale: true, MinQueryIndex: minIndex}
	if minIndex > 0 {
		q.MaxQueryTime = c.cfg.WatchWait
	}
	var err error
	v := &value{}
	switch k.kind {
	case kindService:
		v.index, v.insts, err = c.src.serviceNodes(ctx, k.dc, k.name, k.tag, k.passing, q, nil)
	case kindNode:
		v.more = &moreValue{}
		v.index, v.more.node, err = c.src.node(ctx, k.dc, k.name, q)
	case kindNodes:
		v.more = &moreValue{}
		v.index, v.more.nodes, err = c.src.nodes(ctx, k.dc, q)
	case kindQuery:
		q.MinQueryIndex = 0 // query results are refreshed, never watched
		v.more = &moreValue{}
		v.index, v.insts, v.more.query, err = c.src.preparedQuery(ctx, k.dc, k.name, q, nil)
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}
