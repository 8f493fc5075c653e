package main

import (
	"os"
	"runtime"

	"github.com/alecthomas/kong"
)

// main parses the command line, runs the command and exits with its
// status; commands never exit themselves (see exitError).
func main() {
	if os.Getenv("CAIRN_PPROF") != "1" {
		// The heap profile is served only with CAIRN_PPROF=1 (agent's
		// /debug/pprof); without it, sampling allocations only costs the
		// profiler's bucket table (up to 1.4 MB resident).
		runtime.MemProfileRate = 0
	}
	var cli CLI
	os.Args = append(os.Args[:1:1], consulArgs(os.Args[1:])...)
	ctx := kong.Parse(&cli, kong.Name("cairn"),
		kong.Description("DNS-first service discovery (Consul-compatible)."),
		kong.UsageOnError())
	os.Exit(exitStatus(commandRun(ctx, &cli)(), os.Stderr))
}

// commandRun returns the run of the command ctx selected. The agent's run
// does not hold ctx: through it kong's parsed model of every command and
// flag (≈300 KB of live heap in a client agent's heap profile) would stay
// reachable for as long as the agent runs, on every host.
func commandRun(ctx *kong.Context, cli *CLI) func() error {
	if ctx.Command() == "agent" {
		return func() error { return cli.Agent.Run(&cli.Globals) }
	}
	return func() error { return ctx.Run(&cli.Globals) }
}
