// Package connlimit bounds the TCP connections one listener accepts: at
// most MaxPerClient concurrent connections from one source IP (Consul's
// limits.http_max_conns_per_client / rpc_max_conns_per_client) and at most
// MaxTotal in all. A connection over a limit is accepted and closed at once
// (the only way to tell the peer "no" over TCP), counted in
// cairn_<listener>_conns_refused_total{reason} and logged at most once per
// peer IP per minute, so a flood costs neither file descriptors nor log
// volume.
//
// Invariant callers rely on: a Listener never holds more than its limits of
// open connections it returned from Accept; the slot of a connection is
// released exactly once, when its Close is first called (by whoever owns
// the connection then: the HTTP server, the RPC session, the raft
// transport). Accept never returns an error for a refused connection: it
// loops to the next one.
//
// Total caps are derived from the process's file limit (TotalCap): every
// listener of an agent gets the same share of what is left after a reserve
// for the raft log, Pebble, gossip and outbound connections, so a flood on
// one port can never exhaust the descriptors another port needs to accept
// (before this, 1,100 idle HTTP connections at a 1,024 file limit stopped
// the server port and DNS over TCP too).
//
// One client may hold at most half a listener's total cap, whatever its
// per-client setting, so one flooding process always leaves the other half
// to everyone else.
//
// PeerLog is the once-per-peer-per-minute log gate, shared with the RPC
// server's bad-connection log lines.
package connlimit
