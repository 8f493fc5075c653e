package main

import (
	"fmt"

	"github.com/cairnd/cairn/agent"
)

// VersionCmd prints the version in Consul's layout.
type VersionCmd struct{}

func (VersionCmd) Run(g *Globals) error {
	fmt.Fprintf(g.stdout(), "Cairn v%s\n", agent.Version)
	return nil
}
