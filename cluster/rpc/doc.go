// Package rpc is the wire between client agents and servers, and between
// servers: one TCP port (server RPC, default 8300) carrying two protocols,
// told apart by the first byte of each connection, as Consul does.
//
//   - ProtoRPC (0x01): a yamux session follows; the dialling side is the
//     yamux client. Every request uses its own stream: a length-prefixed
//     msgpack header {Method} and a length-prefixed msgpack body; the
//     response is a length-prefixed {Error} header and a length-prefixed
//     body. The server closes the stream after the response.
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
// pointed at (a server's own state-store rows) is ever written.
//
// Connection lifetime (conns.go, issue 15): every Serve listener caps
// connections per client IP (Limits.MaxConnsPerClient, Consul's
// rpc_max_conns_per_client, default 100) and in all (a share of the file
// limit, package connlimit); refusals are counted in
// cairn_rpc_conns_refused_total{reason}. A session with no open stream for
// SessionIdleTimeout (10 min) gets a yamux GoAway and is closed; an inbound
// raft connection silent for RaftIdleTimeout (5 min) ends with io.EOF, so
// raft closes it without an error line. Because raft pools outbound
// connections and may reuse one after hours (a vote request), the raft
// layer's dialled connections redial themselves when written after half
// that timeout idle: live peers never send on a connection the other side
// closed. Each bad connection or stream is counted in
// cairn_rpc_rejected_total{reason} and logged at most once per peer IP per
// minute.
package rpc
