package cache

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	misses, coalesced, staleHits prometheus.Counter
	pushed, releases             prometheus.Counter
	hits, wireHits               prometheus.Collector
	entries, watched             prometheus.Gauge
}

// newMetrics declares the cache's metrics. Hits are counted in plain
// atomics on the hot path and read by the collector: hits and wireHits
// return the running totals.
func newMetrics(reg prometheus.Registerer, hits, wireHits func() float64) (*metrics, error) {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &metrics{
		hits:      prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "cairn_cache_hits_total", Help: "Lookups answered from the cache (wire-level hits included)."}, hits),
		misses:    c("cairn_cache_misses_total", "Catalog lookups that had to ask a server."),
		coalesced: c("cairn_cache_coalesced_total", "Misses that waited for an identical in-flight request instead of sending their own."),
		staleHits: c("cairn_cache_stale_hits_total", "Hits served while no server answered the entry's refresh."),
		wireHits:  prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "cairn_cache_wire_hits_total", Help: "DNS questions answered from pre-packed bytes."}, wireHits),
		entries:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "cairn_cache_entries", Help: "Cached catalog keys."}),
		watched:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "cairn_cache_watched_keys", Help: "Keys kept fresh by push: live subscriptions (index-watch mode: keys fetched again in the last refresh round)."}),
		pushed:    c("cairn_cache_pushed_total", "Subscription snapshots and updates applied to cache entries."),
		releases:  c("cairn_cache_memory_releases_total", "Collections run to return memory to the OS after a burst of fills ended."),
	}
	if reg != nil {
		for _, col := range []prometheus.Collector{m.hits, m.misses, m.coalesced, m.staleHits, m.wireHits, m.entries, m.watched, m.pushed, m.releases} {
			if err := reg.Register(col); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
