// Package server is a Cairn server agent's cluster core: Raft (Pebble log
// and stable store, file snapshots) over the catalog/KV state machine, serf
// LAN and WAN, the RPC endpoints, leader forwarding and the leader's duties.
//
// Invariants a caller relies on:
//   - A write succeeds only once its Raft entry committed and was applied
//     on this server's FSM (the leader's, when forwarded). It reaches Raft
//     at most once per request: it goes on to a new leader only if it
//     provably never left this server (raft refused it before giving it a
//     log index, dial failed, nothing was sent). Any failure after that
//     answers structs.ErrWriteOutcomeUnknown, as Consul never resubmits.
//   - A call forwarded to the leader ends as soon as raft here names another
//     leader or none (heartbeat timeout, 1-2 s): reads are retried on the
//     new leader, writes answer outcome-unknown. With no leader at all a
//     request waits up to 7 s (Consul's RPC hold timeout): ErrNoLeader.
//   - Blocking reads return once the index of the data they read (per
//     service, node or KV prefix; see cluster/state) exceeds the caller's
//     MinQueryIndex, or MaxQueryTime (default 5m, cap 10m) passes.
//     Identical concurrent blocking reads (method and args, index
//     included) share one wait and one result (blocking.go).
//   - "consistent" reads verify leadership (a quorum round) after the read,
//     on the server that read: never older than an acknowledged write.
//   - Close returns: every wait on a Raft future that raft can leave
//     unanswered at shutdown (Apply, Barrier, VerifyLeader,
//     GetConfiguration, leadership transfer) goes through Server.wait,
//     which ends with the server; a write abandoned so is outcome-unknown.
//   - Followers apply a write soon after writes pause for 5 ms, not after
//     Raft's 50–100 ms CommitTimeout: the leader then appends a Raft
//     barrier whose AppendEntries carries the commit (commitnudge.go), so
//     the delay is the pause, the barrier's log appends (leader, then
//     follower) and a round trip; subscriptions served by followers are
//     that fresh.
//
// Decisions (details in README.md): default reads are Consul's (a deposed
// leader may answer stale within its lease; a paused process escapes it);
// the Raft server ID is the node name; bootstrap-expect and membership come
// from serf tags; autopilot removes dead servers only while quorum holds;
// peers.json is applied before Raft starts; session TTLs run on the leader
// only (2×TTL, re-armed from a new leader's clock) and lock-delay is the
// leader's check before a lock reaches Raft (session.go); a
// transaction is one Raft entry, all or nothing; tombstones are reaped by
// leader-chosen index bounds, never by followers' clocks (README). ACLs (acl.go):
// every call passes one gate in handle() that resolves the caller's token
// (RPC header) on this server's state and checks the method's rule; list
// replies are filtered; methods without a rule need a management token.
// Before that gate, limits.request_limits (limits.go) rate-limits calls
// that came over the network per client IP (reads and writes in separate
// buckets; a client agent is one client); in-process calls and other
// servers of the Raft configuration (followers forward for many clients)
// are never limited. With ACLs on, subscriptions are not served (clients fall back
// to the index watch and its filtered reads): the publisher does not
// filter by token.
//
// Prepared queries and coordinates (query.go, README.md): execute filters,
// sorts by Near and fails over (NearestN by WAN RTT, then Datacenters);
// LAN coordinates replicate through Raft, one entry per agent update;
// agents pace updates to ~64/s per cluster (agent/coordinate.go).
package server
