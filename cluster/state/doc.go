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
// Immutability is the concurrency contract. Every *structs.Node,
// *structs.NodeService, *structs.HealthCheck, *structs.ServiceNode and
// *structs.DirEntry the Store hands out is shared, never mutated after it was
// stored (a write replaces the pointer), so reads return shared pointers
// without copying and callers may keep them while writes continue. Callers
// must treat them, and the Checks slice of a CheckServiceNode, as read-only.
// The slices and maps a read returns are fresh and belong to the caller.
// Conversely the Store takes ownership of the maps and slices inside the
// requests and entries passed to its write methods: do not modify them after
// the call.
//
// Reads report an index that is never 0 (at least 1 on an empty store) so a
// blocking client never spins. KV reads report the KV table index, which moves
// on every KV write and delete (no tombstones), so a watcher of a prefix may
// wake for a change elsewhere in the tree, never miss one in it.
//
// A Store is replaced, not rewound, when the FSM restores a snapshot: the old
// one is Abandoned, which wakes every query blocked on it with ErrAbandoned so
// the server re-runs it against the new Store.
//
// This package does not own persistence beyond the snapshot stream format, nor
// sessions, locks or tombstone reaping.
package state
