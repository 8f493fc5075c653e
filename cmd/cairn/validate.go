package main

import (
	"fmt"
	"io"

	"github.com/cairnd/cairn/agent/config"
)

// ValidateCmd is `cairn validate`, as `consul validate`: load the given
// config files and directories exactly as the agent would (same merge,
// same strictness, same validation), print the warnings, and exit 0 when
// the result is valid, 1 when it is not.
type ValidateCmd struct {
	Paths []string `arg:"" name:"file|dir" help:"Config files or directories, merged in the order given."`
	Quiet bool     `help:"Print nothing when the configuration is valid."`
}

func (c *ValidateCmd) Run(g *Globals) error {
	return c.run(g.stdout(), g.stderr())
}

func (c *ValidateCmd) run(stdout, stderr io.Writer) error {
	if len(c.Paths) == 0 {
		return fail(1, "Must specify at least one config file or directory")
	}
	cfg, err := config.Load(c.Paths, nil)
	if err != nil {
		return fail(1, "Config validation failed: %v", err)
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, w)
	}
	if !c.Quiet {
		fmt.Fprintln(stdout, "Configuration is valid!")
	}
	return nil
}
