// Package http is the agent's Consul-compatible HTTP API.
//
// It owns request parsing and response encoding only. Every catalog,
// health, KV, event, status and operator handler translates the HTTP request
// into a cluster/structs request (QueryOptions from ?index, ?wait, ?stale,
// ?consistent, ?max_stale; Datacenter from ?dc), makes one Backend.RPC call
// and writes Consul's JSON and headers, exactly as Consul's
// agent/*_endpoint.go files do. Agent-local endpoints (/v1/agent/...) call
// methods on the Backend. It owns no state and starts no goroutines beyond
// the request's own; listening is the agent's job.
//
// Invariants callers rely on:
//   - Every response carries X-Consul-Index, X-Consul-KnownLeader and
//     X-Consul-LastContact (milliseconds), errors and KV 404s included;
//     responses without a query result carry index 0.
//   - Bad input (malformed JSON, unknown fields, wrong types, bad query
//     parameters, invalid KV keys) is rejected with 400 and a one-line text
//     reason, oversized bodies with 413, before any Backend call is made.
//   - Request JSON keys match case-insensitively (python-consul sends
//     "name", "check": {"ttl": ...}).
//   - A panicking handler answers 500 and is logged; the agent keeps running.
//
// Decisions where Consul is loose: one leading "/" of a KV key is stripped
// (/v1/kv//a is key "a"), as Consul's CLI does; keys with control characters
// or invalid UTF-8 are rejected. ?wait is capped at MaxQueryTime (10m, as
// Consul). Sessions and ?acquire/?release: README.md ("Sessions").
//
// /v1/txn (txn_endpoint.go): Consul's body (a JSON array of {"KV": {...}}
// ops, Value base64, Index the compared ModifyIndex), strictly decoded; at
// most 64 ops (more: 413, as Consul), bodies up to 512 KiB (Consul's
// txn_max_req_len). Node, Service and Check ops, unknown verbs, a missing
// key or session, and non-default Namespace/Partition answer 400 naming
// the op ("Ops[3].KV.Verb"); so does an empty transaction. 200 with
// Results, or 409 with Errors {OpIndex, What} and nothing applied.
// Transactions of reads and checks only run without Raft, honour ?stale
// and ?consistent and report X-Consul-Index (the KV table's index).
//
// ?filter= is applied here, over the rows the Backend returned, not on the
// servers: blocking is unchanged (Consul, too, wakes a filtered blocking
// query whenever the unfiltered index moves), client agents filter what
// their cache holds, and no RPC shape changes. /v1/catalog/services with a
// filter reads each listed service's rows (one non-blocking RPC each).
//
// ACLs (acl_endpoint.go): the token (X-Consul-Token, Bearer, ?token=) rides
// the request context to the servers, which decide; agent routes are checked
// here against the Backend's Authorizer, resolved at most once per request.
package http
