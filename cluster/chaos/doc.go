// Package chaos is Cairn's Jepsen-style fault-injection harness (issue 13).
// It owns: a launcher for three real `cairn agent --server` processes, one
// per loopback address (127.0.0.31–33, Consul's default ports on each); the
// nemeses (partitions by iptables, SIGSTOP, kill -9, kill -9 of two); the
// workloads (KV registers with put, cas and ?consistent get; one-shot
// ?cas=0 inserts of unique values; catalog register/deregister checked as a
// set), spread over all three HTTP APIs; and the checks: porcupine per key
// and per service instance, acknowledged writes present on every server
// after heal, no write applied twice or applied though answered "not
// applied", replicas equal by ?stale reads, no unexplained error-level log.
//
// Decisions the issue left open:
//   - Nodes run as separate uids (60061–60063) when root, because on
//     loopback every TCP dial gets source 127.0.0.1: the firewall tells
//     nodes apart by `-m owner` and a per-connection mark (firewall.go).
//   - Any error or timeout is outcome-unknown: porcupine lets it apply at
//     any time after its call, or never. Unknown reads are dropped. Half
//     the clients wait out any fault (definite answers after it), half
//     time out after 2 s (load on the new leader during it).
//   - The catalog set is checked per instance (a whole-set read projected
//     onto each instance), plus a phantom check for IDs nobody wrote.
//   - transfer-leader has no endpoint to drive and membership changes wait
//     for `operator raft remove-peer`: both are listed and skipped.
//
// Reproducing: the seed fixes every choice (victims, fault timing, each
// client's operations and servers), not the OS's scheduling, so a replay
// re-creates the trial's shape, not its exact interleaving. A failing trial
// keeps history.txt, porcupine-<key>.html, and each node's log and data dir
// under a directory it prints with the seed; rerun it with
// CHAOS_SEED=<seed> CHAOS_NEMESIS=<name> CHAOS_TRIALS=1 make chaos.
package chaos
