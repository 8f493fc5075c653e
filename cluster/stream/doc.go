// Package stream is the server side of subscriptions: an event publisher
// fed from FSM apply that pushes, per subscribed key, a snapshot and then
// one event per change to the client sessions that hold that key, and to no
// one else. It also defines the wire messages (wire.go), which the client
// side (forwarder.Subscriptions) shares.
//
// Protocol. A client opens ONE long-lived stream per rpc.Session with
// method MethodSubscribe (rpc.Session.OpenStream; body Hello) and multiplexes
// all of its subscriptions on it. Client -> server frames are Request:
// {Op: OpSubscribe, ID, Topic, Key, Tag, PassingOnly, Datacenter, Index} or
// {Op: OpUnsubscribe, ID}. Server -> client frames are Event{ID, Kind,
// Index, ...result}. For a Subscribe the server answers first with
// KindSnapshot (the whole result at its index) or, when the request carries
// Index I and the key has not changed since I, with KindResumed{Index: I}
// (no result: the client's copy is current). Then KindUpdate, one per
// change to the key, in index order. KindError ends one subscription (bad
// datacenter, topic, too many subscriptions); the client falls back to its
// own reads for that key. Topics: TopicServiceHealth keyed by service name
// (Tag and PassingOnly filter per subscription; result = Health, as
// Health.ServiceNodes), TopicNode keyed by node name (result = Node).
//
// Decisions:
//   - Events carry the key's whole result set, not deltas: a key's answers
//     are small, the client replaces its entry as is, and resuming needs no
//     replay buffer. A resume is an index comparison: a server that has
//     applied past the client's Index answers Resumed if the key's index
//     is still Index, else a fresh Snapshot; a server behind the client's
//     Index (a lagging follower) holds the answer until it catches up.
//     Followers serve from their own state (stale semantics, as Consul).
//   - Fan-out is per key: apply hands the publisher the names a write
//     touched (state.Store's commit hook, O(1) per name); the publisher marks
//     only the sessions subscribed to them (O(subscribers of that key)) and
//     never blocks. Instead of a per-topic ring each session keeps a dirty
//     set, at most one pending mark per subscription, so memory is bounded by
//     the subscriptions, not by the change rate, and nothing overflows.
//     A key changed twice before its session sends is sent once, at the
//     newer index (events are whole results, so nothing is lost).
//   - An event whose result is identical to the last one sent for that
//     subscription is not sent (a hash per subscription).
//   - Slow subscriber: each frame is written with SendTimeout; a session
//     that cannot take it is dropped (stream closed, counted in
//     cairn_stream_drops_total) and the client re-opens and resumes: a
//     re-snapshot of what changed. Apply and other sessions never wait.
//   - A restored snapshot (Store replaced) re-checks every subscription.
//
// Memory per subscribed session: one sender goroutine plus the rpc stream
// worker, the subscription map (~150 B per subscription) and the yamux
// stream buffers.
//
// Metrics: cairn_stream_events_sent_total{kind}, cairn_stream_subscriptions,
// cairn_stream_sessions, cairn_stream_drops_total,
// cairn_stream_resnapshots_total (snapshots sent for a resume or a reset).
package stream
