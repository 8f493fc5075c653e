package cache

import (
	"slices"
	"time"
)

// The Catalog's bounds on memory: entries nobody asks for are dropped, and
// past MaxEntries the least recently hit go first. Refresh (refresh.go)
// keeps the remaining ones current.

// janitor advances the coarse clock every clockTick and, every
// janitorEvery, drops idle entries and trims to MaxEntries.
func (c *Catalog) janitor() {
	t := time.NewTicker(clockTick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-c.ctx.Done():
			return
		case now := <-t.C:
			c.clock.Store(now.UnixNano())
			if now.Sub(last) >= janitorEvery {
				last = now
				c.dropIdle(now.UnixNano())
				c.trim(c.cfg.MaxEntries)
			}
		}
	}
}

// dropIdle drops the keys not asked for within IdleTimeout.
func (c *Catalog) dropIdle(now int64) {
	var idle []*entry
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		for _, e := range s.m {
			if now-e.lastHit.Load() > int64(c.cfg.IdleTimeout) {
				idle = append(idle, e)
			}
		}
		s.mu.RUnlock()
	}
	for _, e := range idle {
		c.remove(e)
	}
}

// trim drops the least recently hit entries until at most max remain.
func (c *Catalog) trim(max int) {
	over := int(c.count.Load()) - max
	if over <= 0 {
		return
	}
	type cand struct {
		e   *entry
		hit int64
	}
	var all []cand
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		for _, e := range s.m {
			all = append(all, cand{e, e.lastHit.Load()})
		}
		s.mu.RUnlock()
	}
	slices.SortFunc(all, func(a, b cand) int {
		switch {
		case a.hit < b.hit:
			return -1
		case a.hit > b.hit:
			return 1
		}
		return 0
	})
	for i := 0; i < over && i < len(all); i++ {
		c.remove(all[i].e)
	}
}

// remove drops e from its shard (if still there) and invalidates it.
func (c *Catalog) remove(e *entry) {
	s := c.shardOf(&e.key)
	s.mu.Lock()
	if s.m[e.key] == e {
		delete(s.m, e.key)
		c.count.Add(-1)
		c.metrics.entries.Dec()
	}
	s.mu.Unlock()
	e.removed.Store(true)
	e.version.Add(1)
	c.unsubscribe(e)
}
