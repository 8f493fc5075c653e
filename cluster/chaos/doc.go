// Package chaos is Cairn's Jepsen-style fault-injection harness (issue 13):
// three real `cairn agent --server` processes on 127.0.0.31–33 (Consul's
// default ports on each); nemeses (iptables partitions, SIGSTOP, kill -9 of
// one or two); workloads over all three HTTP APIs (KV put/cas/?consistent
// get, one-shot ?cas=0 inserts of unique values, catalog register and
// deregister as a set, a session lock acquired and released by all
// clients); checks: porcupine per key and per instance, every
// acknowledged write on every server after heal, no write applied twice or
// applied though answered "not applied", equal ?stale replicas, no
// unexplained error-level log line.
//
// Decisions the issue left open:
//   - As root nodes run as uids 60061–63: loopback dials all come from
//     127.0.0.1, so firewall.go matches `-m owner` and a connection mark.
//   - Any error or timeout is outcome-unknown: porcupine lets it apply at
//     any time after its call, or never. Unknown reads are dropped. Half
//     the clients wait out any fault (definite answers after it), half
//     time out after 2 s (load on the new leader during it).
//   - The catalog set is checked per instance (a whole-set read projected
//     onto each instance), plus a phantom check for IDs nobody wrote.
//   - transfer-leader asks a random node for `operator raft
//     transfer-leader` (to a named follower or any voter) every 2–6 s and
//     checks that another node then leads; membership-change removes a
//     follower with `remove-peer` through another node, then has it leave
//     gracefully and restart on its data dir, and checks that the leader
//     adds it back as a voter (gossip join), all while the workload runs.
//
// Reproducing: the seed fixes every random draw (fault timings, victims,
// each client's servers, operation mix and keys); who leads, the answers
// and their interleaving follow the OS's scheduling, so a replay re-creates
// a trial's shape, not its exact history. A failing trial keeps
// history.txt, porcupine-*.html, each node's log and data dir under a
// directory it prints with the seed: CHAOS_SEED=<seed>
// CHAOS_NEMESIS=<name> CHAOS_TRIALS=1 make chaos replays it.
package chaos
