// Package structs holds the catalog, KV and RPC request/response types shared
// by the server tier (cluster/...), the client forwarder and the agent.
//
// Field names follow Consul's JSON (Node, ServiceID, CreateIndex, ...) so the
// HTTP API can encode these values directly. Raft log entries are one
// MessageType byte followed by the msgpack encoding of the request; the
// byte values are part of the on-disk format and never change meaning.
//
// This package owns no behaviour beyond encoding helpers: it must stay
// importable from every other package without cycles.
package structs
