// Command cairn is the Cairn agent and its operator CLI.
package main

import (
	"fmt"
	"os"

	"github.com/alecthomas/kong"
)

func main() {
	var cli CLI
	os.Args = append(os.Args[:1:1], consulArgs(os.Args[1:])...)
	ctx := kong.Parse(&cli, kong.Name("cairn"),
		kong.Description("DNS-first service discovery (Consul-compatible)."),
		kong.UsageOnError())
	if err := ctx.Run(&cli.Globals); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
