// Package tlsconf owns Cairn's TLS material for the server port: it
// creates a CA and agent certificates the way `consul tls ca create` and
// `consul tls cert create` do (generate.go, used by `cairn tls`), and it
// turns the agent's TLS settings into crypto/tls configurations for the
// server port's listener and dialers (Configurator).
//
// Why this name and home: the material guards cluster traffic (RPC, Raft,
// the forwarder), so it sits under cluster/; "tlsutil" would be a util
// package. The package knows nothing of sockets or the wire: cluster/rpc
// asks it for *tls.Config values and applies the RPCTLS marker byte.
//
// Decisions the issue left open, written down here:
//   - Keys are ECDSA P-256 (Consul's default); CAs live 1825 days and
//     certificates 365 days unless told otherwise, as Consul's.
//   - Server certificates carry server.<dc>.<domain>, client ones
//     client.<dc>.<domain>, CLI ones cli.<dc>.<domain>; all carry
//     localhost and 127.0.0.1. Server and client certificates are valid for
//     both server and client auth (a server dials other servers); CLI ones
//     only for client auth.
//   - Outgoing connections use TLS exactly when verify_outgoing is on; the
//     listener accepts TLS whenever a certificate is configured, and refuses
//     plain connections only under verify_incoming.
//   - TLS 1.2 is the minimum; Go prefers 1.3 when both ends speak it.
//   - Under verify_server_hostname a Raft connection must present a
//     server.<dc>.<domain> certificate (RaftPeerName): any certificate the
//     CA signed opens RPC sessions, but only servers may vote.
//
// Invariant callers rely on: every *tls.Config handed out reads the
// certificate and CA pool through an atomic pointer at handshake time, so
// Reload swaps them for new connections while established ones keep going.
// A Reload that fails (missing file, bad PEM, key not matching) changes
// nothing.
package tlsconf
