// Package stream is the server side of subscriptions: a publisher fed from
// FSM apply (state.Store's commit hook) that pushes, per subscribed key, a
// snapshot and then one event per change to the client sessions holding
// that key, and to no one else. wire.go defines the messages, shared with
// the client side (forwarder.Subscriptions).
//
// Protocol: one long-lived rpc stream per client session (MethodSubscribe,
// opening body Hello) multiplexes every subscription of that client.
// Client frames are Request{Op: Subscribe|Unsubscribe, ID, Topic, Key, Tag,
// PassingOnly, Datacenter, Index}; server frames are Event{ID, Kind, Index,
// result}. A Subscribe is answered by Snapshot (whole result) or, when its
// Index is still the key's, Resumed; then Update (whole new result) per
// change, in index order; Error ends one subscription. Topics:
// ServiceHealth by service name (Health.ServiceNodes' result, with the
// subscription's tag and passing-only filters) and Node by node name.
//
// Invariants and decisions (detail in README.md):
//   - Events carry whole results, so resuming is an index comparison: a
//     server past the client's Index answers Resumed or a fresh Snapshot;
//     one behind it (a lagging follower) answers once it catches up.
//     Followers serve from their own state (stale, as Consul).
//   - Apply never blocks: it marks the sessions subscribed to the touched
//     names (O(subscribers of that key)); each session has a dirty set, at
//     most one mark per subscription (bounded by subscriptions, not change
//     rate), and a sender goroutine only while that set is not empty. Two
//     changes before a send go out as one, at the newer index.
//   - An unchanged filtered result is not sent (hash per subscription).
//   - A subscriber that does not take a frame within SendTimeout is dropped
//     (counted); its client re-opens the stream and resumes.
//   - A restored snapshot (Store replaced) re-checks every subscription.
//
// Metrics: README.md.
package stream
