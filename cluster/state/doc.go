// Package state is the server's in-memory read model: the catalog (nodes,
// services, checks) and the KV store, indexed for the reads the DNS resolver
// and the HTTP API make, plus the watch machinery behind blocking queries.
//
// Only the FSM writes, one Raft entry at a time, passing its index. Entries
// carry CreateIndex/ModifyIndex and every table the index of its last
// change, as Consul's store. A write that changes nothing moves no index
// and wakes no one. Entry pointers a read returns are shared and never
// mutated (writes replace them): callers treat them as read-only; slices and
// maps a read returns are theirs. Writes own the requests passed to them.
//
// Indexes are per key (Consul's): a read reports, never 0, the index of the
// last change to the data it returns and blocks on a Key naming that data.
// Service X: X's instances, their checks, the rows and node-level checks
// of nodes hosting X; a name with no instance reports the last removal of a
// service's last instance (Consul's extinction index). Node N likewise, with
// the last node removal. KV prefix P: the highest ModifyIndex under P, and
// at least the last delete under P's directory (P cut after its last '/'),
// kept without tombstones in a map of live directories (see index.go), so a
// read after a delete reports more than any index seen before it. Node and
// service lists and ChecksInState use table indexes: the service list moves
// on any service change. A KV watch of P wakes for writes to keys starting
// with P (a Get watches its key as a prefix); a woken query whose index did
// not move blocks again. Per-key indexes are not in snapshots: a restored
// Store reports at least the snapshot's index for every key.
//
// Subscriptions: every write that changed a service or node hands its index
// and the touched names to the CommitHook (SetCommitHook), under the write
// lock and in apply order; cluster/stream's publisher marks the sessions
// subscribed to those names and never blocks (protocol, resume and drop
// rules in cluster/stream's doc.go).
//
// A restored snapshot replaces the Store: the old one is Abandoned, which
// closes AbandonCh and ends every Block on it; the server re-runs against
// the new one. Not here: persistence beyond the snapshot format, sessions,
// locks, tombstone reaping.
package state
