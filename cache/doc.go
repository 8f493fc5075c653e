// Package cache is a client agent's memory of the catalog: a
// resolver.PackedCatalog in front of the forwarder. It holds no socket
// (resolver owns the DNS port). Source, the one adapter from catalog rows
// to resolver values, is also what server agents hand the resolver.
//
// Invariants: keys are (datacenter, kind, name, tag, passing-only). A hit
// reads one shard under a read lock; no lock is shared across keys. N
// concurrent identical misses make one forwarder request (singleflight).
// Every replacement or removal of an entry moves its version, which drops
// the resolver's packed answers built from it; an unchanged answer keeps it.
//
// Decisions (reasons and measurements in README.md):
//   - Push refresh: ONE blocking query follows the local datacenter's
//     catalog index, not one per key (the servers' index is table-wide, so
//     per-key queries would all wake on every change). When it moves, keys
//     hit within hotWindow are fetched again, refreshWorkers at a time;
//     colder keys are dropped and fetched when next asked.
//   - Keys of other datacenters are served for Config.UnwatchedTTL, then
//     fetched again.
//   - Keys not asked for within Config.IdleTimeout are dropped;
//     Config.MaxEntries bounds the count (least recently hit goes first).
//   - When no server answers, entries are served for up to Config.MaxStale
//     and counted stale; a miss then fails at once (SERVFAIL).
//   - Empty answers to cold misses are cached for NegativeTTL only.
//   - Prepared query results are keys of their own (kind query), fetched
//     and refreshed like a local service: a change to the query definition
//     alone is seen when the key is next fetched (idle drop or a catalog
//     change), not pushed.
//   - Packed hits are checked by the entries themselves (entry.Serve), so
//     freshness, max_stale and hit bookkeeping are the same on both paths.
//
// Metrics: README.md.
package cache
