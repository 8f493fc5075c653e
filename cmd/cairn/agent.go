package main

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/cairnd/cairn/agent"
	"github.com/cairnd/cairn/agent/config"
)

// AgentCmd runs the agent daemon. Pointer flags are nil unless given, so
// only flags the operator set override the config files.
type AgentCmd struct {
	Dev                     bool     `help:"Development mode: one in-memory server, DNS 127.0.0.1:8600, HTTP 127.0.0.1:8500, nothing on disk."`
	UI                      bool     `name:"ui" help:"Serve the web UI under /ui/ on the HTTP port (on with --dev)."`
	Server                  *bool    `help:"Run as a server (Raft member)."`
	BootstrapExpect         *int     `name:"bootstrap-expect" help:"Servers to wait for before bootstrapping Raft."`
	DataDir                 *string  `name:"data-dir" help:"Directory for Raft log, snapshots and state."`
	Node                    *string  `name:"node" help:"Node name (default: hostname)."`
	NodeID                  *string  `name:"node-id" help:"Node ID, a UUID (default: generated on first start and kept in the data dir)."`
	AdvertiseWAN            *string  `name:"advertise-wan" help:"Address servers advertise over the WAN (the node's wan tagged address)."`
	Datacenter              *string  `name:"datacenter" help:"Datacenter name (default dc1)."`
	Bind                    *string  `name:"bind" help:"Address for cluster traffic (serf, server RPC)."`
	Advertise               *string  `name:"advertise" help:"Address other agents use to reach this one."`
	Client                  *string  `name:"client" help:"Address for DNS and HTTP (default 127.0.0.1)."`
	RetryJoin               []string `name:"retry-join" help:"Serf LAN address to join, retried until it works (repeatable)."`
	RetryJoinWAN            []string `name:"retry-join-wan" help:"Serf WAN address of another datacenter's server (repeatable)."`
	Encrypt                 *string  `name:"encrypt" help:"Gossip encryption key (cairn keygen)."`
	ConfigDir               []string `name:"config-dir" help:"Directory of JSON config files (repeatable)."`
	Recursor                []string `name:"recursor" help:"Upstream DNS server for non-Consul names (repeatable)."`
	DNSPort                 *int     `name:"dns-port" help:"DNS port (default 8600; -1 disables, 0 lets the kernel pick)."`
	HTTPPort                *int     `name:"http-port" help:"HTTP API port (default 8500; -1 disables, 0 lets the kernel pick)."`
	HTTPSPort               *int     `name:"https-port" help:"HTTPS API port (default -1: off; 0 lets the kernel pick); needs tls.https or tls.defaults cert_file and key_file."`
	ServerPort              *int     `name:"server-port" help:"Server RPC port (default 8300; 0 lets the kernel pick)."`
	SerfLANPort             *int     `name:"serf-lan-port" help:"Serf LAN port (default 8301; 0 lets the kernel pick)."`
	SerfWANPort             *int     `name:"serf-wan-port" help:"Serf WAN port (default 8302; -1 disables, 0 lets the kernel pick)."`
	Domain                  *string  `name:"domain" help:"DNS domain (default consul.)."`
	AltDomain               *string  `name:"alt-domain" help:"Alternate DNS domain."`
	LogLevel                *string  `name:"log-level" help:"debug, info, warn or error."`
	LogJSON                 *bool    `name:"log-json" help:"Log in JSON."`
	EnableLocalScriptChecks *bool    `name:"enable-local-script-checks" help:"Allow script checks defined in local config files and the local API."`
	ReadyFile               string   `name:"ready-file" help:"Once every listener is up, write the bound addresses here as JSON (dns, http, https, server, serf_lan, serf_wan); removed at exit. With port 0 this is how scripts learn the ports."`
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (a *AgentCmd) apply(c *config.Config) {
	if a.Dev {
		c.Dev = true
	}
	set(&c.Server, a.Server)
	set(&c.BootstrapExpect, a.BootstrapExpect)
	set(&c.DataDir, a.DataDir)
	set(&c.NodeName, a.Node)
	set(&c.NodeID, a.NodeID)
	set(&c.AdvertiseAddrWAN, a.AdvertiseWAN)
	set(&c.Datacenter, a.Datacenter)
	set(&c.BindAddr, a.Bind)
	set(&c.AdvertiseAddr, a.Advertise)
	set(&c.ClientAddr, a.Client)
	c.RetryJoin = append(c.RetryJoin, a.RetryJoin...)
	c.RetryJoinWAN = append(c.RetryJoinWAN, a.RetryJoinWAN...)
	set(&c.Encrypt, a.Encrypt)
	c.Recursors = append(c.Recursors, a.Recursor...)
	set(&c.Ports.DNS, a.DNSPort)
	set(&c.Ports.HTTP, a.HTTPPort)
	set(&c.Ports.HTTPS, a.HTTPSPort)
	set(&c.Ports.Server, a.ServerPort)
	set(&c.Ports.SerfLAN, a.SerfLANPort)
	set(&c.Ports.SerfWAN, a.SerfWANPort)
	set(&c.Domain, a.Domain)
	set(&c.AltDomain, a.AltDomain)
	set(&c.LogLevel, a.LogLevel)
	set(&c.LogJSON, a.LogJSON)
	set(&c.EnableLocalScriptChecks, a.EnableLocalScriptChecks)
	if a.UI {
		c.UIConfig.Enabled = true
	}
}

func (a *AgentCmd) Run(*Globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return agent.Run(ctx, agent.Options{ConfigDirs: a.ConfigDir, Apply: a.apply, ReadyFile: a.ReadyFile})
}
