// Package server is a Cairn server agent's cluster core: Raft (log and
// stable store on Pebble, file snapshots) over the catalog/KV state
// machine, serf LAN and WAN membership, the RPC endpoints on the server
// port, leader forwarding and the leader's duties.
//
// Invariants a caller relies on:
//   - A write returns only after its Raft entry committed and was applied
//     on this server's FSM (or the leader's, when forwarded).
//   - A follower forwards writes, and non-stale reads, to the leader over
//     the server port; the leader serves default reads only after the
//     barrier that follows its election, so it never serves a view older
//     than its own commits; "consistent" reads also verify leadership.
//   - Blocking reads return once the watched tables' index exceeds the
//     caller's MinQueryIndex, or MaxQueryTime (default 5m, cap 10m) passes.
//
// Decisions: the Raft server ID is the node name (unique per datacenter,
// as serf requires); servers discover each other through serf LAN tags
// (role=consul, dc, port, expect) and, with bootstrap-expect N, every
// server bootstraps the same configuration once N servers are seen and
// none has Raft state. The leader adds later servers as voters on join and
// removes them on leave. Node health follows serf: alive → serfHealth
// passing, failed → critical, left/reaped → node deregistered.
//
// Outage recovery (snapshot.go, autopilot.go, recovery.go): the leader
// saves a snapshot after a barrier, and restores one with raft.Restore
// (followers get an InstallSnapshot) only once archive and state verify.
// Autopilot on the leader removes servers serf reports left, or failed and
// unhealthy for server_stabilization_time (so a pause keeps its vote), one
// at a time while the live voters keep a quorum; servers serf does not know
// are left alone; new servers still join as voters at once.
// <data-dir>/raft/peers.json (Consul v3) is applied with raft.RecoverCluster
// before Raft starts, then deleted.
package server
