// Package rpc is the wire between client agents and servers, and between
// servers: one TCP port (server RPC, default 8300) carrying two protocols,
// told apart by the first byte of each connection, as Consul does.
//
//   - ProtoRPC (0x01): a yamux session follows; the dialling side is the
//     yamux client. A request on a stream of its own is a length-prefixed
//     msgpack header {Method} and a length-prefixed msgpack body; the
//     response a length-prefixed {Error} header and body; the server then
//     closes the stream, except for HandleStream methods (stream.go),
//     whose stream carries frames both ways (cluster/stream). Calls that
//     overlap share one pipeline stream instead (pipeline.go, method
//     RPC.Pipeline/1; older servers refuse it and keep a stream per call).
//   - ProtoRaft (0x02): the raw hashicorp/raft network transport stream,
//     handed to the raft.StreamLayer returned by Server.RaftLayer.
//   - ProtoTLS (0x03, Consul's RPCTLS): a TLS handshake follows, then one
//     of the bytes above inside TLS (tls.go). Under verify_incoming
//     (Server.SetTLS) plain ProtoRPC and ProtoRaft connections are refused
//     before a byte of theirs is interpreted.
//
// The package owns framing, limits and session lifetime; it knows nothing
// about endpoints (cluster registers Handlers) or about server selection
// and failover (the forwarder owns those).
//
// Invariants a caller relies on: a malformed connection or stream only
// ever costs itself (it is closed with a logged reason, other sessions keep
// being served); a length prefix is checked against Limits.MaxFrameSize
// before any buffer is allocated; Call reports with a *TransportError
// whether the request may have reached the server (MaybeSent), so writes
// are never resent blindly by the layers above; Call zeroes reply before
// decoding, so a reused reply never keeps old entries and nothing it
// pointed at (a server's own state-store rows) is ever written. All of
// that holds for pipelined calls too (README.md, "Write path").
//
// Connections are capped per client IP and in all, idle sessions and raft
// connections are closed, and every refusal is counted and logged at most
// once per peer per minute (conns.go; details in README.md). An idle
// client session costs a server 3 goroutines and about 23 KiB, one holding
// a subscription stream 4 and about 38 KiB: no server-side keepalive
// timer, one idle sweeper and one worker pool for all sessions, small
// per-stream buffers (README.md, "Memory per connected client").
package rpc
