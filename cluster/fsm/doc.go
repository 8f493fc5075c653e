// Package fsm is the Raft state machine of a Cairn server: it decodes
// committed log entries (one structs.MessageType byte followed by the
// request in the compact command encoding of cluster/structs) and applies
// them to the current state.Store, and it snapshots and restores that
// Store.
//
// What Apply returns for a log entry is what raft hands back from
// ApplyFuture.Response() on the server that proposed it:
//
//   - error: the command was rejected (bad input, undecodable body, unknown
//     KV op); the state is unchanged by it;
//   - bool: the outcome of a KV "cas" or "delete-cas" op;
//   - nil: the command was applied (or skipped, see below).
//
// Rejections are deterministic, so every replica rejects the same entries
// and the stores stay identical. Log entries that are not commands
// (configuration changes handed to ApplyBatch) are ignored and answer nil.
//
// Version safety (Consul's rule): an entry whose type this server does not
// know is skipped only if its type carries structs.IgnoreUnknownTypeFlag;
// any other unknown type, or a command in a newer format version, panics on
// raft's apply goroutine and so stops the server, loudly, rather than let
// it diverge from newer servers that apply the entry. New commands (and new
// KV ops, which old servers would reject) therefore get a new message type,
// flagged only if old servers may safely go without them.
//
// Restore builds a new Store and swaps it in atomically; the old Store is
// then abandoned so queries blocked on it return (its AbandonCh closes) and
// re-run against the new one. Readers must therefore fetch State() per
// query, not cache it. The FSM owns no goroutines. A Publisher
// (SetPublisher; the subscription publisher of cluster/stream) is installed
// as every Store's commit hook and reset after a Restore.
package fsm
