package main

import (
	"io"
	"os"
)

// Globals are flags every command accepts, and the command's streams.
type Globals struct {
	HTTPAddr string `name:"http-addr" env:"CAIRN_HTTP_ADDR,CONSUL_HTTP_ADDR" default:"127.0.0.1:8500" help:"Address of the local agent's HTTP API (host:port, http://… or https://…)."`
	// HTTPS settings, Consul's flag and variable names (CAIRN_* first,
	// CONSUL_* as fallbacks so scripts move over unchanged).
	HTTPSSL       bool   `name:"http-ssl" env:"CAIRN_HTTP_SSL,CONSUL_HTTP_SSL" help:"Talk HTTPS to an address given without a scheme."`
	HTTPSSLVerify bool   `name:"http-ssl-verify" env:"CAIRN_HTTP_SSL_VERIFY,CONSUL_HTTP_SSL_VERIFY" default:"true" negatable:"" help:"Verify the agent's certificate (--no-http-ssl-verify skips it)."`
	CAFile        string `name:"ca-file" env:"CAIRN_CACERT,CONSUL_CACERT" type:"path" help:"CA bundle (PEM) that signed the agent's HTTPS certificate."`
	CAPath        string `name:"ca-path" env:"CAIRN_CAPATH,CONSUL_CAPATH" type:"path" help:"Directory of CA certificates (PEM)."`
	ClientCert    string `name:"client-cert" env:"CAIRN_CLIENT_CERT,CONSUL_CLIENT_CERT" type:"path" help:"Client certificate (PEM) for an agent with verify_incoming on HTTPS."`
	ClientKey     string `name:"client-key" env:"CAIRN_CLIENT_KEY,CONSUL_CLIENT_KEY" type:"path" help:"Key (PEM) of --client-cert."`
	TLSServerName string `name:"tls-server-name" env:"CAIRN_TLS_SERVER_NAME,CONSUL_TLS_SERVER_NAME" help:"Name to verify in the agent's certificate instead of the address's host."`
	// Token is the ACL secret sent as X-Consul-Token with every request.
	Token string `name:"token" env:"CAIRN_HTTP_TOKEN,CONSUL_HTTP_TOKEN" help:"ACL token to send with every request."`

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
	Lock       LockCmd       `cmd:"" help:"Run a command while holding a lock (or, with -n, a semaphore slot) on a KV prefix."`
	Monitor    MonitorCmd    `cmd:"" help:"Stream the agent's logs."`
	UI         UICmd         `cmd:"" name:"ui" help:"Print (and open in a browser) the agent's web UI URL."`
	Info       InfoCmd       `cmd:"" help:"Print the agent's debugging information."`
	RTT        RTTCmd        `cmd:"" name:"rtt" help:"Estimate the round trip time between two nodes from their network coordinates."`
	Reload     ReloadCmd     `cmd:"" help:"Re-read the agent's configuration files."`
	Operator   OperatorCmd   `cmd:"" help:"Operator commands (raft)."`
	TLS        TLSCmd        `cmd:"" name:"tls" help:"Create a CA and certificates for TLS on the server port."`
	Snapshot   SnapshotCmd   `cmd:"" help:"Save, restore and inspect snapshots of the servers' state."`
	Validate   ValidateCmd   `cmd:"" help:"Check config files and directories as the agent would load them."`
	ACL        ACLCmd        `cmd:"" name:"acl" help:"Bootstrap ACLs and manage ACL policies and tokens."`
}
