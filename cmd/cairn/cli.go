package main

import (
	"io"
	"os"
)

// Globals are flags every command accepts, and the command's streams.
type Globals struct {
	HTTPAddr string `name:"http-addr" env:"CAIRN_HTTP_ADDR" default:"127.0.0.1:8500" help:"Address of the local agent's HTTP API."`

	// Stdin, Stdout and Stderr are the command's streams; nil means the
	// process's own. Tests set them to run a command in-process.
	Stdin  io.Reader `kong:"-"`
	Stdout io.Writer `kong:"-"`
	Stderr io.Writer `kong:"-"`
}

func (g *Globals) stdin() io.Reader {
	if g.Stdin != nil {
		return g.Stdin
	}
	return os.Stdin
}

func (g *Globals) stdout() io.Writer {
	if g.Stdout != nil {
		return g.Stdout
	}
	return os.Stdout
}

func (g *Globals) stderr() io.Writer {
	if g.Stderr != nil {
		return g.Stderr
	}
	return os.Stderr
}

// CLI is the kong command tree; one file per command.
type CLI struct {
	Globals

	Agent   AgentCmd   `cmd:"" help:"Run a Cairn agent (client or server)."`
	Version VersionCmd `cmd:"" help:"Print the version."`
	KV      KVCmd      `cmd:"" name:"kv" help:"Read and write the key-value store."`
	Catalog CatalogCmd `cmd:"" help:"List the catalog's services and nodes."`
	Maint   MaintCmd   `cmd:"" help:"Toggle or list node and service maintenance mode."`

	Members    MembersCmd    `cmd:"" help:"List the members of the gossip pool."`
	Join       JoinCmd       `cmd:"" help:"Tell the agent to join a cluster."`
	Leave      LeaveCmd      `cmd:"" help:"Leave the cluster gracefully and shut the agent down."`
	ForceLeave ForceLeaveCmd `cmd:"" name:"force-leave" help:"Move a failed node to the left state (--prune: forget it)."`
	Keygen     KeygenCmd     `cmd:"" help:"Print a new gossip encryption key."`
	Keyring    KeyringCmd    `cmd:"" help:"Install, use, remove or list gossip encryption keys across the cluster."`
	Event      EventCmd      `cmd:"" help:"Fire a user event."`
	Exec       ExecCmd       `cmd:"" help:"Run a command on remote agents (remote exec must be enabled on them)."`
	Watch      WatchCmd      `cmd:"" help:"Watch a view of the cluster and run a handler on every change."`
	Monitor    MonitorCmd    `cmd:"" help:"Stream the agent's logs."`
	Info       InfoCmd       `cmd:"" help:"Print the agent's debugging information."`
	RTT        RTTCmd        `cmd:"" name:"rtt" help:"Estimate the round trip time between two nodes from their network coordinates."`
	Reload     ReloadCmd     `cmd:"" help:"Re-read the agent's configuration files."`
	Operator   OperatorCmd   `cmd:"" help:"Operator commands (raft)."`
	TLS        TLSCmd        `cmd:"" name:"tls" help:"Create a CA and certificates for TLS on the server port."`
	Snapshot   SnapshotCmd   `cmd:"" help:"Save, restore and inspect snapshots of the servers' state."`
}
