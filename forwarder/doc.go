// Package forwarder is a client agent's connection to the server tier: it
// keeps exactly one TCP connection (one rpc.Session) to one server of its
// datacenter and sends every RPC over it, multiplexed.
//
// The agent feeds it the servers' RPC addresses from gossip (SetServers);
// Run owns the connection: it dials a server from a shuffled list, moves to
// the next one as soon as the session dies (bounded by
// Config.FailoverWithin), and every RebalanceInterval (jittered, and
// stretched for big clusters as Consul does) moves to a random other
// server so clients spread evenly after servers come back. A rebalance
// drains: new calls use the new session, the old one closes once its
// in-flight calls finish.
//
// Retry rule: reads (idempotent) are retried on the next server until ctx
// ends. Writes are retried only when the request provably never left the
// process; otherwise (connection lost, or ctx ended, once it may have been
// sent) Call returns ErrWriteOutcomeUnknown and the caller decides (a write
// is never resent blindly). It is structs.ErrWriteOutcomeUnknown, the
// sentinel servers answer with when they lost track of a write, so callers
// test for one error either way.
//
// Subscriptions (subscribe.go) carry all of a client's subscriptions
// (cluster/stream) on ONE long-lived stream of the current session; it
// does not pin the session against a rebalance drain: when that session
// closes, the stream is re-opened on the next one and every subscription
// re-sent with the index of its last result (resume).
//
// Metrics: cairn_forwarder_requests_total{method, result="ok"|"error"} (one per
// Call, retries not double-counted), cairn_forwarder_connections (open
// server connections: 1 in steady state, 2 while a rebalance drains),
// cairn_forwarder_retries_total, cairn_forwarder_failovers_total,
// cairn_forwarder_rebalances_total.
//
// It does not pick servers by latency or talk to other datacenters directly:
// servers forward cross-DC requests.
package forwarder
