package main

import "errors"

// AgentCmd runs the agent daemon.
type AgentCmd struct {
	Dev bool `help:"Development mode: one in-memory server, nothing written to disk."`
}

func (a *AgentCmd) Run(*Globals) error {
	return errors.New("agent: not wired yet")
}
