// Package fsm is the Raft state machine of a Cairn server: it decodes
// committed log entries (one structs.MessageType byte followed by the
// msgpack request, see cluster/structs) and applies them to the current
// state.Store, and it snapshots and restores that Store.
//
// What Apply returns for a log entry is what raft hands back from
// ApplyFuture.Response() on the server that proposed it:
//
//   - error: the command was rejected (bad input, undecodable body, unknown
//     message type or KV op); the state is unchanged by it;
//   - bool: the outcome of a KV "cas" or "delete-cas" op;
//   - nil: the command was applied.
//
// Rejections are deterministic, so every replica rejects the same entries
// and the stores stay identical. Log entries that are not commands
// (configuration changes handed to ApplyBatch) are ignored and answer nil.
//
// Restore builds a new Store and swaps it in atomically; the old Store is
// then abandoned so queries blocked on it return (its AbandonCh closes) and
// re-run against the new one. Readers must therefore fetch State() per
// query, not cache it. The FSM owns no goroutines.
package fsm
