// Package structs holds the catalog, KV and RPC request/response types shared
// by the server tier (cluster/...), the client forwarder and the agent.
//
// Field names follow Consul's JSON (Node, ServiceID, CreateIndex, ...) so the
// HTTP API can encode these values directly. Raft log entries are one
// MessageType byte followed by the command in a compact hand-written binary
// encoding (command.go: a format version byte, then the fields), not
// msgpack; RPC bodies are msgpack, with the write requests carrying the
// same command encoding inside. MessageType values and the command layout
// are part of the on-disk format and never change meaning; a type with
// IgnoreUnknownTypeFlag set may be skipped by servers that do not know it.
// SessionRequestType (3: session create/destroy, KV lock/unlock) is the
// exception to the compact encoding: msgpack, as sessions are not hot.
//
// Errors that callers branch on are sentinels here (ErrNotLeader,
// ErrWriteOutcomeUnknown, ...); across RPC they travel as text and
// ErrorFromString maps them back.
//
// This package owns no behaviour beyond encoding helpers: it must stay
// importable from every other package without cycles.
package structs
