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
	os.Exit(exitStatus(ctx.Run(&cli.Globals), os.Stderr))
}
