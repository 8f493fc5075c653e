package config

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/cairnd/cairn/cache"
	"github.com/cairnd/cairn/cluster/server"
	"github.com/cairnd/cairn/resolver"
)

// This file maps the agent configuration onto the settings of the parts
// the agent wires (server tier, DNS resolver, client cache), so the agent
// itself only starts them. Each function fills what is configuration;
// the caller adds what is not (logger, registry, build version, hooks).

// Reloadable is the part of the configuration a reload replaces in place
// (as Consul: log level, script-check and remote-exec permissions, node
// meta, and the services and checks of the files). Everything else is
// fixed for the life of the process.
type Reloadable struct {
	LogLevel                string
	EnableLocalScriptChecks bool
	DisableRemoteExec       bool
	NodeMeta                map[string]string
	Services                []ServiceDefinition
	Checks                  []CheckDefinition
}

// Reloadable returns a copy of c's reloadable settings.
func (c *Config) Reloadable() *Reloadable {
	return &Reloadable{
		LogLevel:                c.LogLevel,
		EnableLocalScriptChecks: c.EnableLocalScriptChecks,
		DisableRemoteExec:       c.DisableRemoteExec,
		NodeMeta:                maps.Clone(c.NodeMeta),
		Services:                slices.Clone(c.Services),
		Checks:                  slices.Clone(c.Checks),
	}
}

// Fixed returns a copy of c without its reloadable settings: what a
// running agent may read without synchronisation, because nothing
// changes it after start. Reading a reloadable field of it is a bug,
// which the zero values make visible.
func (c *Config) Fixed() *Config {
	f := *c
	f.LogLevel, f.EnableLocalScriptChecks, f.DisableRemoteExec = "", false, false
	f.NodeMeta, f.Services, f.Checks = nil, nil, nil
	return &f
}

// UIEnabled reports whether the agent serves the web UI (ui_config.enabled).
func (c *Config) UIEnabled() bool { return c.UIConfig.Enabled }

// ClusterBindAddr is the address serf and the server RPC port bind:
// --dev keeps cluster traffic on loopback.
func (c *Config) ClusterBindAddr() string {
	if c.Dev {
		return "127.0.0.1"
	}
	return c.BindAddr
}

// GossipKey decodes encrypt (nil when gossip is not encrypted).
func (c *Config) GossipKey() ([]byte, error) {
	if c.Encrypt == "" {
		return nil, nil
	}
	k, err := base64.StdEncoding.DecodeString(c.Encrypt)
	if err != nil {
		return nil, fmt.Errorf("config: encrypt: %w", err)
	}
	return k, nil
}

// ServerConfig is the server tier's configuration of a server agent.
func (c *Config) ServerConfig() (server.Config, error) {
	key, err := c.GossipKey()
	if err != nil {
		return server.Config{}, err
	}
	sc := server.DefaultConfig()
	sc.NodeName = c.NodeName
	sc.NodeID = c.NodeID
	sc.Datacenter = c.Datacenter
	sc.DataDir = c.DataDir
	sc.InMemory = c.Dev
	sc.BootstrapExpect = max(c.BootstrapExpect, 1)
	sc.BindAddr = c.ClusterBindAddr()
	sc.AdvertiseAddr = c.AdvertiseAddr
	sc.AdvertiseAddrWAN = c.AdvertiseAddrWAN
	sc.RPCPort = c.Ports.Server
	sc.SerfLANPort = c.Ports.SerfLAN
	sc.SerfWANPort = c.Ports.SerfWAN // PortDisabled (-1) turns the WAN pool off
	sc.RetryJoin = c.RetryJoin
	sc.RetryJoinWAN = c.RetryJoinWAN
	sc.EncryptKey = key
	sc.ReconnectTimeout = c.ReconnectTimeout.Duration()
	sc.SessionTTLMin = c.SessionTTLMin.Duration()
	sc.RPCMaxConnsPerClient = c.Limits.RPCMaxConnsPerClient
	rl := c.Limits.RequestLimits
	sc.RequestLimits = server.RequestLimits{Mode: rl.Mode, ReadRate: rl.ReadRate, WriteRate: rl.WriteRate}
	sc.FastGossip = c.Dev
	sc.Autopilot = c.Autopilot.ServerConfig()
	sc.TombstoneTTL = c.KV.TombstoneTTL.Duration()
	return sc, nil
}

// DNSAddr is the host:port the DNS port binds (UDP and TCP).
func (c *Config) DNSAddr() string {
	return net.JoinHostPort(c.ClientAddr, strconv.Itoa(c.Ports.DNS))
}

// HTTPAddr is the host:port the HTTP API binds.
func (c *Config) HTTPAddr() string {
	return net.JoinHostPort(c.ClientAddr, strconv.Itoa(c.Ports.HTTP))
}

// HTTPSAddr is the host:port the HTTPS API binds (ports.https).
func (c *Config) HTTPSAddr() string {
	return net.JoinHostPort(c.ClientAddr, strconv.Itoa(c.Ports.HTTPS))
}

// ResolverConfig is the DNS resolver's configuration (dns_config and the
// DNS names of this agent).
func (c *Config) ResolverConfig() resolver.Config {
	d := c.DNSConfig
	rc := resolver.DefaultConfig()
	rc.Addr = c.DNSAddr()
	rc.Domain = c.Domain
	rc.AltDomain = c.AltDomain
	rc.Datacenter = c.Datacenter
	rc.NodeName = c.NodeName
	rc.Recursors = c.Recursors
	rc.RecursorTimeout = d.RecursorTimeout.Duration()
	rc.AllowStale = d.AllowStale
	rc.MaxStale = d.MaxStale.Duration()
	rc.NodeTTL = d.NodeTTL.Duration()
	if len(d.ServiceTTL) > 0 {
		rc.ServiceTTL = make(map[string]time.Duration, len(d.ServiceTTL))
		for k, v := range d.ServiceTTL {
			rc.ServiceTTL[k] = v.Duration()
		}
	}
	rc.OnlyPassing = d.OnlyPassing
	rc.TranslateWANAddrs = c.TranslateWANAddrs
	rc.EnableTruncate = d.EnableTruncate
	rc.UDPAnswerLimit = d.UDPAnswerLimit
	rc.ARecordLimit = d.ARecordLimit
	rc.DisableCompression = d.DisableCompression
	rc.SOA = resolver.SOAConfig{Refresh: d.SOA.Refresh, Retry: d.SOA.Retry, Expire: d.SOA.Expire, MinTTL: d.SOA.MinTTL}
	return rc
}

// CacheConfig is the client cache's configuration: its bounds, and the
// SOA min TTL as how long an empty answer is kept.
func (c *Config) CacheConfig() cache.Config {
	cc := cache.DefaultConfig()
	cc.Datacenter = c.Datacenter
	cc.NodeName = c.NodeName
	cc.MaxEntries = c.Cache.MaxEntries
	cc.MaxStale = c.Cache.MaxStale.Duration()
	cc.NegativeTTL = time.Duration(c.DNSConfig.SOA.MinTTL) * time.Second
	return cc
}
