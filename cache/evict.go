package cache

import (
	"slices"
	"time"
)

// The Catalog's bounds on memory: entries nobody asks for are dropped, and
// past MaxEntries the least recently hit go first. Refresh (refresh.go)
// keeps the remaining ones current.

// janitor advances the coarse clock every clockTick while the cache is
// asked and, every janitorEvery, drops idle entries and trims to
// MaxEntries. After quietTicks ticks without a question it stops ticking
// and wakes only every janitorEvery for that work (an idle client agent's
// only cache wake-up), until the next question wakes it (touch), which
// first stores a fresh clock. A timed answer is therefore never judged by
// a clock older than the question. It also releases memory once a burst
// of fills has ended (memory.go), waking early for it when asleep.
func (c *Catalog) janitor() {
	t := time.NewTicker(clockTick)
	defer t.Stop()
	sleep := time.NewTimer(janitorEvery)
	sleep.Stop()
	defer sleep.Stop()
	last := time.Now()
	var burst fillBurst
	work := func(now time.Time) {
		if now.Sub(last) >= janitorEvery {
			last = now
			c.dropIdle(now.UnixNano())
			c.trim(c.cfg.MaxEntries)
		}
		if c.cfg.ReleaseMemory != nil && burst.ended(now, c.fills.Load()) {
			c.cfg.ReleaseMemory()
			c.metrics.releases.Inc()
		}
	}
	// nap is a sleeping janitor's next wake: asleepEvery, or sooner when
	// a burst of fills is due its release.
	nap := func(now time.Time) time.Duration {
		d := c.asleepEvery()
		if w, ok := burst.wait(now); ok && c.cfg.ReleaseMemory != nil {
			d = min(d, max(w, clockTick))
		}
		return d
	}
	quiet, sleeping := 0, false
	for {
		if sleeping {
			select {
			case <-c.ctx.Done():
				return
			case <-c.wakeCh: // touch cleared asleep and stored the clock
				sleeping, quiet = false, 0
				sleep.Stop()
				t.Reset(clockTick)
			case now := <-sleep.C:
				c.clock.Store(now.UnixNano())
				work(now)
				sleep.Reset(nap(now))
			}
			continue
		}
		select {
		case <-c.ctx.Done():
			return
		case now := <-t.C:
			c.clock.Store(now.UnixNano())
			work(now)
			if c.active.Swap(false) {
				quiet = 0
				continue
			}
			if quiet++; quiet < quietTicks {
				continue
			}
			// Going to sleep. A question racing with this either sees
			// asleep (and wakes us through wakeCh, which the sleeping
			// select reads) or set active before we look at it (and we
			// stay up): one of the two always sees the other's store.
			c.asleep.Store(true)
			if c.active.Load() && c.asleep.CompareAndSwap(true, false) {
				quiet = 0
				continue
			}
			t.Stop()
			sleep.Reset(nap(time.Now()))
			sleeping = true
		}
	}
}

// asleepEvery is how often a sleeping janitor wakes to drop idle keys:
// with no questions nothing is inserted (so nothing to trim) and keys go
// idle over IdleTimeout, so a sixteenth of it (at least janitorEvery)
// drops them at most 6% late and keeps an idle agent's timer quiet
// (issue 19: idle wake-ups).
func (c *Catalog) asleepEvery() time.Duration {
	return max(janitorEvery, c.cfg.IdleTimeout/16)
}

// touch marks the current clock tick as asked (one atomic load per
// question once marked) and wakes a sleeping janitor, storing a fresh
// clock before the question reads it.
func (c *Catalog) touch() {
	if c.active.Load() {
		return
	}
	c.active.Store(true)
	if c.asleep.Load() && c.asleep.CompareAndSwap(true, false) {
		c.clock.Store(time.Now().UnixNano())
		select {
		case c.wakeCh <- struct{}{}:
		default:
		}
	}
}

// dropIdle drops the keys not asked for within IdleTimeout.
func (c *Catalog) dropIdle(now int64) {
	var idle []*entry
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		s.each(func(e *entry) {
			if now-e.lastHit.Load() > int64(c.cfg.IdleTimeout) {
				idle = append(idle, e)
			}
		})
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
		s.each(func(e *entry) { all = append(all, cand{e, e.lastHit.Load()}) })
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
	s, h := c.locate(&e.key)
	s.mu.Lock()
	if s.drop(h, e) {
		c.count.Add(-1)
		c.metrics.entries.Dec()
	}
	s.mu.Unlock()
	e.set(entryRemoved, true)
	e.version.Add(1)
	c.unsubscribe(e)
}
