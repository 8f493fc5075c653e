package main

import (
	"os"

	"github.com/alecthomas/kong"
)

// main parses the command line, runs the command and exits with its
// status; commands never exit themselves (see exitError).
func main() {
	var cli CLI
	os.Args = append(os.Args[:1:1], consulArgs(os.Args[1:])...)
	ctx := kong.Parse(&cli, kong.Name("cairn"),
		kong.Description("DNS-first service discovery (Consul-compatible)."),
		kong.UsageOnError())
	os.Exit(exitStatus(ctx.Run(&cli.Globals), os.Stderr))
}
