package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/structs"
)

// Tombstone reaping (Consul's tombstone GC). Only the leader keeps time:
// every granularity it notes the Store's highest tombstone index with the
// time it saw it, and once a noted index is TombstoneTTL old it commits a
// reap entry bounded by that index. Followers apply the entry by index, so
// every replica removes the same tombstones whatever its clock. A new
// leader starts from what its Store holds, so tombstones made under an
// old leader live between one and two TTLs (plus granularity).

// Defaults, Consul's (TombstoneTTL, TombstoneTTLGranularity): a blocking
// client sees a deleted key's index for 15 minutes, far longer than any
// blocking query waits; reaps are batched by 30 s.
const (
	DefaultTombstoneTTL = 15 * time.Minute
	maxTombstoneGranule = 30 * time.Second
)

// tombstoneTimes returns the TTL and how often the reaper looks: a tenth
// of the TTL, at most 30 s, so a short test TTL is honoured closely.
func (c *Config) tombstoneTimes() (ttl, granule time.Duration) {
	ttl = c.TombstoneTTL
	if ttl <= 0 {
		ttl = DefaultTombstoneTTL
	}
	return ttl, min(max(ttl/10, time.Millisecond), maxTombstoneGranule)
}

// startTombstoneReaper runs the reaper until ctx ends (leadership lost);
// wait returns once it has stopped.
func (s *Server) startTombstoneReaper(ctx context.Context) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.reapTombstones(ctx)
	}()
	return func() { <-done }
}

func (s *Server) reapTombstones(ctx context.Context) {
	ttl, granule := s.cfg.tombstoneTimes()
	type mark struct {
		due   time.Time
		index uint64
	}
	var (
		marks []mark
		seen  uint64
	)
	tick := time.NewTicker(granule)
	defer tick.Stop()
	for {
		now := time.Now()
		// A restored snapshot may bring back a lower index: note it too.
		if last := s.State().LastTombstoneIndex(); last != seen {
			seen = last
			marks = append(marks, mark{due: now.Add(ttl), index: last})
		}
		var bound uint64
		for len(marks) > 0 && !marks[0].due.After(now) {
			bound = marks[0].index
			marks = marks[1:]
		}
		if bound > 0 {
			req := &structs.TombstoneRequest{Datacenter: s.cfg.Datacenter, Op: structs.TombstoneReap, ReapIndex: bound}
			if _, _, err := s.apply(structs.TombstoneRequestType|structs.IgnoreUnknownTypeFlag, req); err != nil {
				// Leadership is going or the log is stuck: the next
				// leader reaps these from its own marks.
				s.log.Warn("tombstone reap failed", zap.Uint64("bound", bound), zap.Error(err))
			} else {
				s.log.Debug("reaped tombstones", zap.Uint64("bound", bound))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// registerTombstoneMetrics exports how many tombstones this server holds.
func (s *Server) registerTombstoneMetrics() {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cairn_kv_tombstones",
		Help: "KV tombstones (deleted keys whose delete index reads still report) held by this server's state, until the leader reaps them after kv.tombstone_ttl.",
	}, func() float64 { return float64(s.State().Tombstones()) })
	if err := s.cfg.Registry.Register(g); err != nil {
		s.log.Warn("metric registration", zap.Error(err))
	}
}
