// Package state is the server's in-memory read model: the catalog (nodes,
// services, checks) and the KV store, indexed for the reads the DNS resolver
// and the HTTP API make, plus the watch machinery behind blocking queries.
//
// Only the FSM (cluster/fsm) writes to a Store, one Raft log entry at a time,
// passing the entry's index; every table remembers the index of its last
// change and every entry its CreateIndex/ModifyIndex, as Consul's state store.
// A write that changes nothing (an anti-entropy re-registration, a no-op
// delete) bumps no index, so it wakes no blocking query.
//
// Immutability is the concurrency contract. Every entry pointer a read
// returns is shared and never mutated after it was stored (a write replaces
// the pointer), so reads copy nothing and callers may keep results while
// writes continue; callers treat entries, and CheckServiceNode.Checks, as
// read-only. Slices and maps a read returns are fresh and the caller's. The
// Store takes ownership of the maps and slices inside requests passed to its
// writes: do not modify them after the call.
//
// Reads report an index that is never 0 (at least 1 on an empty store) so a
// blocking client never spins. KV reads report the KV table index, which moves
// on every KV write and delete (no tombstones), so a watcher of a prefix may
// wake for a change elsewhere in the tree, never miss one in it.
//
// A Store is replaced, not rewound, when the FSM restores a snapshot: the old
// one is Abandoned, which closes its AbandonCh and makes every Block on it
// return; the server sees AbandonCh closed and re-runs against the new Store.
//
// This package does not own persistence beyond the snapshot stream format, nor
// sessions, locks or tombstone reaping.
package state
