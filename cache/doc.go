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
//   - Push by subscription (Config.Refresh = RefreshSubscribe, default):
//     each cached local key holds one subscription on the forwarder's one
//     stream (cluster/stream), opened from the index of the answer its miss
//     fetched, so a change in between comes back as a snapshot. An event
//     replaces the entry (packed answers of that key only are dropped); no
//     read RPC follows a change. Removing a key unsubscribes it. After a
//     failover the forwarder resumes each subscription from its last index.
//   - RefreshIndexWatch keeps the old mode for comparison: one blocking
//     query on the catalog index, then a refetch of every key hit within
//     hotWindow on each move (O(hot keys) reads per change per client).
//   - Keys of other datacenters (and, with subscriptions, the node list
//     and prepared queries, which have no topic) are served for
//     Config.UnwatchedTTL, then fetched again.
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
//   - Memory goes back to the OS after a burst of fills (Config.
//     ReleaseMemory, memory.go): at least ReleaseBurst fills, then
//     ReleaseQuiet without one, cost one collection and a release of the
//     free pages; hits allocate nothing, so nothing else would collect
//     the burst's garbage soon.
//
// Metrics: README.md.
package cache
