package main

// Globals are flags every command accepts.
type Globals struct {
	HTTPAddr string `name:"http-addr" env:"CAIRN_HTTP_ADDR" default:"127.0.0.1:8500" help:"Address of the local agent's HTTP API."`
}

// CLI is the kong command tree; one file per command.
type CLI struct {
	Globals

	Agent   AgentCmd   `cmd:"" help:"Run a Cairn agent (client or server)."`
	Version VersionCmd `cmd:"" help:"Print the version."`
	KV      KVCmd      `cmd:"" name:"kv" help:"Read and write the key-value store."`
	Catalog CatalogCmd `cmd:"" help:"List the catalog's services and nodes."`
	Maint   MaintCmd   `cmd:"" help:"Toggle or list node and service maintenance mode."`
}
