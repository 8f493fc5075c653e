// Package local holds the agent's view of its own node — the services and
// checks registered with this agent — and keeps the catalog in step with it
// (anti-entropy), as Consul's agent/local and agent/ae do.
//
// It owns: the local service and check records with an in-sync flag each,
// maintenance-mode checks, reaping services whose check stays critical past
// DeregisterCriticalServiceAfter, and the Syncer that pushes changes to the
// servers. It does not run checks (agent/checks does, notifying State) and
// does not talk to the network itself: the Syncer uses the RPCer it is given.
//
// Invariants:
//
//   - The agent is the source of truth for its node. A full sync makes the
//     catalog's services and checks for this node equal to the local ones
//     (ignoring Create/ModifyIndex), deregistering what only the catalog
//     has — except the serfHealth check and the "consul" service, which the
//     leader owns.
//   - State never calls the network or the Syncer while holding its lock;
//     the Syncer never holds State's lock across an RPC. A record changed
//     while its RPC was in flight stays dirty and is synced again.
//   - Nothing is written when nothing differs: a second sync of unchanged
//     state issues only the two reads.
//   - Notify's channel has one consumer, the Syncer.
//   - Reaping takes the delay as given; Consul's 1-minute floor is applied
//     by the caller (checks.Definition.ReapAfter), so tests can use
//     milliseconds. A check's critical clock restarts whenever it leaves
//     critical.
//   - Syncer.Run's periodic full sync waits Interval plus a random stagger
//     in [0, aeScale(Interval, clusterSize)), Consul's anti-entropy timing:
//     above 128 nodes the period grows with log2 of the cluster size.
package local
