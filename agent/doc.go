// Package agent is the Cairn agent runtime: it wires configuration, the
// server tier (cluster/...), the DNS resolver, the client cache and
// forwarder, local services and checks, and the HTTP API into one process
// with a single owner for every goroutine (Close returns only after all
// of them stopped).
//
// Decisions recorded here (DESIGN.md leaves them open):
//   - Servers answer DNS from their local state store (stale reads, as
//     Consul's allow_stale default); clients go through cache → forwarder.
//   - SIGINT/SIGTERM stop the agent without leaving the cluster (peers see
//     it fail and the leader marks its serfHealth critical); `cairn leave`
//     leaves gracefully first, then stops the agent.
//   - A reload re-reads the config dirs and replaces only services and
//     checks that came from files (API registrations survive it, as in
//     Consul); log level, script-check and remote-exec permissions and
//     node meta change in place; ports, roles and addresses need a restart.
//     A bad file leaves the running configuration untouched.
//   - User events are kept in a ring of the last 256 an agent saw, filtered
//     by the event's node/service/tag regexps against this agent.
//   - CAIRN_FAST_GOSSIP=1 (tests) shortens serf and Raft timings; it is not
//     a configuration key because production clusters must not use it.
package agent

// Version is the build's version, set by the Makefile through -ldflags.
// It is a var only so the linker can set it; nothing assigns it at run time.
var Version = "0.1.0-dev"
