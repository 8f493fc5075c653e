// Package cache is a client agent's memory of the catalog: a
// resolver.Catalog in front of the forwarder, and a wire-level UDP front
// (Front) that answers repeated DNS questions from pre-packed bytes.
//
// Catalog keys are (datacenter, kind, name, tag, passing-only). A hit reads
// one shard under a read lock; no lock is shared across keys. N concurrent
// identical misses make one forwarder request (singleflight).
//
// Push refresh: ONE blocking query per Catalog (the index watch) follows
// the catalog index of the local datacenter. The servers' index is
// table-wide — max(nodes, services, checks) — so a per-key blocking query
// would wake on every change anyway; one query sees the same moves for the
// price of one stream and one goroutine instead of ~35 KB per key (10,000
// keys cost 333 MB with per-key watches). When the index moves, every key
// hit within hotWindow (2 s) and answered below the new index is fetched
// again, at most refreshWorkers (16) at a time; an unchanged answer keeps
// its version, so packed wire answers survive. Colder keys are dropped and
// fetched when next asked. Keys of other datacenters are served for
// Config.UnwatchedTTL and then fetched again. Keys not asked for within
// Config.IdleTimeout are dropped, and the number of entries is bounded by
// Config.MaxEntries (least recently hit goes first). When no server answers, entries keep being served for up to
// Config.MaxStale; a miss then fails at once (the resolver answers
// SERVFAIL). Empty answers to cold misses are cached for NegativeTTL only.
//
// Front owns the UDP sockets of the DNS port: blocking sockets, one per CPU,
// each read by a goroutine sleeping in recvfrom (udp.go) rather than
// through the netpoller, and client agents keep GOMAXPROCS >= 2 so sysmon
// leaves those short syscalls alone (runtime.go). A question it has answered
// before (same lower-cased name, type, class and EDNS size) is answered by
// copying the packed response and patching the ID, the RD/CD bits and the
// question's letter case; anything else goes through resolver.ServeDNS and
// the packed result is kept, tied to the catalog entries it was built from
// so it is dropped the moment any of them changes. Both paths give the same
// bytes apart from the ID and the order of shuffled records.
//
// Client runtime (TuneClientRuntime, runtime.go): a client agent runs with
// GOGC=50 and a 20 MiB soft memory limit unless GOGC/GOMEMLIMIT are set.
// Its steady state allocates nothing (wire hits), so the collector only
// works while keys are filled or refreshed; the tighter heap took the
// 10,000-name RSS from 65 to 42 MB together with single packings for
// one-record answers. Of those 42 MB about 26 MB are file-backed pages of
// the (one, client+server) binary, not heap.
//
// Metrics: cairn_cache_hits_total, cairn_cache_misses_total,
// cairn_cache_coalesced_total, cairn_cache_stale_hits_total,
// cairn_cache_entries, cairn_cache_watched_keys (keys fetched again in the
// last refresh round),
// cairn_cache_wire_hits_total.
package cache
