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
//   - Blocking reads return once the watched tables' index exceeds the
//     caller's MinQueryIndex, or MaxQueryTime (default 5m, cap 10m) passes.
//   - "consistent" reads verify leadership (a quorum round) after the read,
//     on the server that read: never older than an acknowledged write.
//
// Decision on "default" reads (issue 13), Consul's documented behaviour:
// the leader answers from its own state (after its post-election barrier)
// without a quorum round, so a deposed leader may serve stale values in a
// small window. A partitioned leader steps down after LeaderLeaseTimeout
// (500 ms) without quorum contact, before followers can elect another
// (1 s heartbeat timeout): the chaos runs saw ~0.5 s of default reads and
// none stale. A paused process (SIGSTOP, VM freeze) escapes the lease: on
// resume, reads queued during the pause may be served stale until its first
// heartbeat round deposes it (TestPausedLeaderReads: a few, within ~10 ms).
// Callers that need linearizable reads ask for ?consistent.
//
// Decisions: the Raft server ID is the node name; servers find each other
// through serf LAN tags (role=consul, dc, port, expect) and, with
// bootstrap-expect N, all bootstrap the same configuration once N servers
// are seen and none has Raft state. The leader adds joining servers as
// voters and removes leaving ones. Node health follows serf: alive →
// serfHealth passing, failed → critical, left/reaped → node deregistered.
package server
