// Package cache is a client agent's memory of the catalog: a
// resolver.Catalog in front of the forwarder, and a wire-level UDP front
// (Front) that answers repeated DNS questions from pre-packed bytes.
//
// Catalog keys are (datacenter, kind, name, tag, passing-only). A hit reads
// one shard under a read lock; no lock is shared across keys. N concurrent
// identical misses make one forwarder request (singleflight). Every key that
// is asked for is kept fresh by a blocking query over the forwarder's single
// connection, replaced as soon as the server's index moves; keys not asked
// for within Config.IdleTimeout stop being watched and are dropped, and the
// number of entries is bounded by Config.MaxEntries (least recently hit
// goes first). When no server answers, entries keep being served for up to
// Config.MaxStale; a miss then fails at once (the resolver answers
// SERVFAIL). Empty answers to cold misses are cached for NegativeTTL only.
//
// Front owns the UDP sockets of the DNS port. A question it has answered
// before (same lower-cased name, type, class and EDNS size) is answered by
// copying the packed response and patching the ID, the RD/CD bits and the
// question's letter case; anything else goes through resolver.ServeDNS and
// the packed result is kept, tied to the catalog entries it was built from
// so it is dropped the moment any of them changes. Both paths give the same
// bytes apart from the ID and the order of shuffled records.
//
// Metrics: cairn_cache_hits_total, cairn_cache_misses_total,
// cairn_cache_coalesced_total, cairn_cache_stale_hits_total,
// cairn_cache_entries, cairn_cache_watched_keys,
// cairn_cache_wire_hits_total.
package cache
