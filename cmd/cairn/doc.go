// Command cairn is the Cairn agent and its operator CLI.
//
// main.go parses the command line with kong (after rewriting Consul's
// one-dash flags, args.go), runs the chosen command and exits; each other
// file is one command: a kong struct with Run(*Globals) error.
//
// Exit statuses: a command never calls os.Exit (that would skip its
// defers, such as exec's deletion of its job tree). It returns an
// *exitError carrying the status and the message Consul prints, or any
// other error, which main prints after "Error: " with status 1. The
// statuses are Consul's: 1 for a failure; 2 from `members` when the
// filter matches nobody and from `exec` when a node exited non-zero or
// refused.
//
// Globals carries the command's stdin/stdout/stderr (nil: the process's),
// so tests run a command's Run in this process against a real dev agent
// (agent.Run, as `cairn agent --dev`) and compare exit status, stderr
// wording and stdout layout, the latter against golden files in testdata/
// (`go test -update` rewrites them). Commands that end only on SIGINT
// (watch with a handler, monitor) are driven through run(ctx, ...), the
// step Run performs with the signal context.
//
// `cairn lock` (lock.go) speaks consul/api's Lock and Semaphore protocol
// (same keys, flags and .lock JSON), so it contends with Consul clients.
// Its session has a 15 s TTL renewed every 7.5 s and the default
// lock-delay; the child runs in its own process group, gets SIGTERM when
// the lock is lost (SIGKILL 5 s later) and the command exits 1. One-letter
// flags keep their value when Consul spellings are rewritten (-n 2, -n=2).
package main
