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
// Outage recovery (Consul's names; snapshot.go, autopilot.go, recovery.go):
//   - Snapshot.Save is served by the leader (any server with AllowStale)
//     after a barrier, from raft.Snapshot; Snapshot.Restore verifies the
//     archive and the state stream fully, then calls raft.Restore on the
//     leader, which followers receive as an InstallSnapshot. The restored
//     catalog is then reconciled with serf, as after an election.
//   - Autopilot runs on the leader every 2s (200ms with FastGossip): it
//     asks each alive server for its Raft stats (Status.RaftStats) to build
//     Consul's health report, and with cleanup_dead_servers removes servers
//     serf reports failed or left, one at a time, only while the live
//     voters still make a quorum of what remains. Servers serf does not
//     know are left alone (after a full restart Raft may elect a leader
//     before gossip rejoins). New servers join as voters at once:
//     server_stabilization_time is reported (StableSince), not enforced.
//   - <data-dir>/raft/peers.json (Consul's v3 format) forces the Raft
//     configuration with raft.RecoverCluster before Raft starts, then is
//     deleted; a bad file stops the server with the reason and is kept.
package server
