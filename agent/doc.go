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
//   - Configuration: what is fixed for the process's life (node, datacenter,
//     roles, addresses, ports, data dir) is set at New and read without
//     locks; config.Reloadable (log level, script-check and remote-exec
//     permissions, node meta, the files' services and checks) sits behind
//     an atomic.Pointer. Reload re-reads the config dirs, swaps it, and
//     pushes each change to the part that holds a copy (logger level, the
//     syncer's node meta); other changes need a restart. API registrations
//     survive a reload, as in Consul; a bad file changes nothing.
//   - Port 0 lets the kernel pick any listener's port. Addrs reports the
//     bound (advertised, for serf and RPC) addresses: "agent listening" log
//     line, /v1/agent/self "Addrs", and --ready-file (JSON, written
//     atomically once everything listens, removed at exit).
//   - Errors: operations wrap ErrInvalid or ErrNotFound; backend.go hands
//     them to agent/http, which alone maps them to status codes.
//   - User events are kept in a ring of the last 256 an agent saw, filtered
//     by the event's node/service/tag regexps against this agent.
//   - The HTTP port refuses state-changing requests a browser sends for
//     another site (ui.GuardWrites: a browser's write needs X-Cairn-UI: 1),
//     UI on or off; with ui_config.enabled it serves agent/ui under /ui/
//     and redirects / there (webui.go).
//   - CAIRN_FAST_GOSSIP=1 (tests) shortens serf and Raft timings; it is not
//     a configuration key because production clusters must not use it.
//   - ACLs (acl.go): requests without a token use acl.tokens.default (else
//     anonymous), DNS included; anti-entropy uses tokens.agent. Client
//     agents cache a server's token resolution for token_ttl and, when no
//     server answers, apply down_policy (extend-cache: last answer, else
//     deny). With ACLs on, server agents answer DNS through the in-process
//     RPC (filtered) instead of reading the store directly. The acl block is
//     not reloadable (restart to change tokens).
//   - Node ID (nodeid.go): node_id/--node-id, else <data_dir>/node-id made
//     on first start (dev or no data dir: random per start). Tagged
//     addresses lan/wan(+_ipv4/_ipv6) sync with the node; wan translation
//     applies to DNS only. Agents send their coordinate every 15s.
package agent

// Version is the build's version, set by the Makefile through -ldflags.
// It is a var only so the linker can set it; nothing assigns it at run time.
var Version = "0.1.0-dev"
