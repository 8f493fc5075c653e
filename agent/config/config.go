package config

import (
	"os"
	"time"

	"github.com/cairnd/cairn/cluster/connlimit"
)

// Defaults that are Consul's, so operators' muscle memory carries over.
const (
	DefaultDatacenter = "dc1"
	DefaultDomain     = "consul."
	DefaultBindAddr   = "0.0.0.0"
	DefaultClientAddr = "127.0.0.1"

	DefaultDNSPort     = 8600
	DefaultHTTPPort    = 8500
	DefaultServerPort  = 8300
	DefaultSerfLANPort = 8301
	DefaultSerfWANPort = 8302

	// PortDisabled turns off the DNS, HTTP or serf WAN listener (Consul's -1).
	PortDisabled = -1
	// PortAny lets the kernel pick a free port for a listener; the agent
	// reports the bound addresses (see agent.Addrs).
	PortAny = 0

	// DefaultRecursorPort is used for recursors given without a port.
	DefaultRecursorPort = "53"
)

// Config is the whole agent configuration: defaults, then config files, then
// command-line flags, in that order of precedence (see Load).
type Config struct {
	// Dev runs one in-memory server on loopback. Only the --dev flag sets it,
	// as in Consul; a config file cannot.
	Dev bool `json:"-"`

	Server          bool   `json:"server"`
	BootstrapExpect int    `json:"bootstrap_expect"`
	DataDir         string `json:"data_dir"`
	NodeName        string `json:"node_name"`
	NodeID          string `json:"node_id"`
	// DisableHostNodeID (Consul's disable_host_node_id, default true):
	// when false, a node ID generated on first start derives from the
	// host's machine ID instead of being random.
	DisableHostNodeID *bool  `json:"disable_host_node_id"`
	Datacenter        string `json:"datacenter"`

	BindAddr      string `json:"bind_addr"`
	AdvertiseAddr string `json:"advertise_addr"`
	// AdvertiseAddrWAN is the node's "wan" tagged address (default: the
	// advertise address).
	AdvertiseAddrWAN string `json:"advertise_addr_wan"`
	// TranslateWANAddrs makes answers for other datacenters use the
	// nodes' "wan" tagged addresses, as Consul's translate_wan_addrs.
	TranslateWANAddrs bool   `json:"translate_wan_addrs"`
	ClientAddr        string `json:"client_addr"`

	RetryJoin    []string `json:"retry_join"`
	RetryJoinWAN []string `json:"retry_join_wan"`

	// Encrypt is the base64 gossip key (16, 24 or 32 bytes decoded).
	Encrypt string `json:"encrypt"`

	// Recursors are upstream DNS servers as IP or IP:port; Load normalises
	// them to IP:port with port 53 when omitted.
	Recursors []string `json:"recursors"`

	Ports Ports `json:"ports"`

	// Domain and AltDomain are normalised to lower-case FQDNs ("consul.").
	Domain    string `json:"domain"`
	AltDomain string `json:"alt_domain"`

	// LogLevel is one of debug, info, warn, error (Consul's trace, warning
	// and err are accepted and folded into these).
	LogLevel string `json:"log_level"`
	LogJSON  bool   `json:"log_json"`

	EnableLocalScriptChecks bool `json:"enable_local_script_checks"`
	DisableRemoteExec       bool `json:"disable_remote_exec"`

	// ReconnectTimeout is how long a failed node stays in the member list
	// before it is reaped (Consul's minimum is 8h).
	ReconnectTimeout Duration `json:"reconnect_timeout"`

	// SessionTTLMin is the shortest session TTL servers accept (Consul's
	// session_ttl_min, default 10s).
	SessionTTLMin Duration `json:"session_ttl_min"`

	NodeMeta map[string]string `json:"node_meta"`

	DNSConfig DNSConfig `json:"dns_config"`
	Cache     Cache     `json:"cache"`
	Autopilot Autopilot `json:"autopilot"`

	// TLS guards the server port (see tls.go); LegacyTLS holds Consul's
	// older top-level ca_file, cert_file, verify_* keys.
	TLS TLS `json:"tls"`
	LegacyTLS
	Limits Limits `json:"limits"`
	// KV tunes the KV store on servers.
	KV KV `json:"kv"`

	// UIConfig is Consul's ui_config block; only enabled is implemented
	// (the other keys are accepted and ignored, see ignoredKeys).
	UIConfig UIConfig `json:"ui_config"`
	ACL      ACL      `json:"acl"`

	// UI is Consul's pre-1.9 spelling of ui_config.enabled; Load folds it
	// in (ui_config.enabled = true wins).
	UI *bool `json:"ui"`

	// Services and Checks collect the "service"/"services" and
	// "check"/"checks" keys of every config file, in load order.
	Services []ServiceDefinition `json:"services"`
	Checks   []CheckDefinition   `json:"checks"`

	// Warnings are Load's non-fatal findings, for the caller to log: files
	// of a config dir that were skipped, Consul keys that were ignored.
	Warnings []string `json:"-"`
}

// UIConfig is Consul's ui_config block.
type UIConfig struct {
	// Enabled serves the web UI from this agent's HTTP port.
	Enabled bool `json:"enabled"`
}

// Ports are the listener ports. DNS, HTTP and SerfWAN may be PortDisabled;
// any may be PortAny.
type Ports struct {
	DNS     int `json:"dns"`
	HTTP    int `json:"http"`
	Server  int `json:"server"`
	SerfLAN int `json:"serf_lan"`
	SerfWAN int `json:"serf_wan"`
	// HTTPS serves the same API over TLS (tls.https, over tls.defaults).
	// Off (PortDisabled) unless set, as in Consul.
	HTTPS int `json:"https"`
}

// DNSConfig is Consul's dns_config block.
type DNSConfig struct {
	AllowStale bool     `json:"allow_stale"`
	MaxStale   Duration `json:"max_stale"`
	NodeTTL    Duration `json:"node_ttl"`
	// ServiceTTL maps service names to answer TTLs: an exact name, a
	// "prefix*" or "*" (the resolver applies the rules).
	ServiceTTL         map[string]Duration `json:"service_ttl"`
	OnlyPassing        bool                `json:"only_passing"`
	EnableTruncate     bool                `json:"enable_truncate"`
	UDPAnswerLimit     int                 `json:"udp_answer_limit"`
	ARecordLimit       int                 `json:"a_record_limit"`
	RecursorTimeout    Duration            `json:"recursor_timeout"`
	DisableCompression bool                `json:"disable_compression"`
	SOA                SOA                 `json:"soa"`
}

// SOA holds the SOA record timers, in seconds as in Consul.
type SOA struct {
	Refresh uint32 `json:"refresh"`
	Retry   uint32 `json:"retry"`
	Expire  uint32 `json:"expire"`
	MinTTL  uint32 `json:"min_ttl"`
}

// Limits is Consul's limits block: connection caps per client IP. Zero
// means unlimited, as in Consul. Total caps per listener are not
// configured: they derive from the file limit (see package connlimit).
type Limits struct {
	// HTTPMaxConnsPerClient caps concurrent HTTP API connections from one
	// IP (Consul's default 200: far above any CLI, UI or client library,
	// which keep a handful of keep-alive connections).
	HTTPMaxConnsPerClient int `json:"http_max_conns_per_client"`
	// RPCMaxConnsPerClient caps concurrent server-port connections from one
	// IP: RPC sessions and raft connections (Consul's default 100; a
	// client agent holds one session, a raft peer a few connections).
	RPCMaxConnsPerClient int `json:"rpc_max_conns_per_client"`
	// RequestLimits rate-limit HTTP API requests, and on servers the
	// server port's requests, per client IP.
	RequestLimits RequestLimits `json:"request_limits"`
}

// Request limit modes (Consul's names).
const (
	RequestLimitsDisabled   = connlimit.ModeDisabled
	RequestLimitsPermissive = connlimit.ModePermissive // count and log, serve anyway
	RequestLimitsEnforcing  = connlimit.ModeEnforcing  // answer 429
)

// RequestLimits is Consul's limits.request_limits block, applied per
// client IP (Consul applies it per server) to the HTTP API and, on
// servers, to the server port (a client agent counts as one client):
// ReadRate to GET requests and read RPCs, WriteRate to the others, in
// requests per second; 0 or less is unlimited. Off by default.
type RequestLimits struct {
	Mode      string  `json:"mode"`
	ReadRate  float64 `json:"read_rate"`
	WriteRate float64 `json:"write_rate"`
}

// KV is Cairn's kv block (Consul has no file key for these: its
// TombstoneTTL is internal). TombstoneTTL is how long a deleted key's
// tombstone keeps its delete index visible to blocking reads before the
// leader reaps it; Consul's 15 minutes by default.
type KV struct {
	TombstoneTTL Duration `json:"tombstone_ttl"`
}

// Cache bounds the client agent's DNS/catalog cache.
type Cache struct {
	MaxEntries int `json:"max_entries"`
	// MaxStale is how long an entry may be served when no server answers.
	MaxStale Duration `json:"max_stale"`
}

// DefaultConfig returns the configuration before any file or flag is
// applied. NodeName is the host name (or "cairn" when it cannot be read);
// AdvertiseAddr is left empty and resolved by Load from the final BindAddr.
func DefaultConfig() *Config {
	node, err := os.Hostname()
	if err != nil || node == "" {
		node = "cairn"
	}
	return &Config{
		NodeName:          node,
		Datacenter:        DefaultDatacenter,
		BindAddr:          DefaultBindAddr,
		ClientAddr:        DefaultClientAddr,
		Domain:            DefaultDomain,
		LogLevel:          "info",
		DisableRemoteExec: true,
		ReconnectTimeout:  Duration(72 * time.Hour),
		Ports: Ports{
			DNS:     DefaultDNSPort,
			HTTP:    DefaultHTTPPort,
			Server:  DefaultServerPort,
			SerfLAN: DefaultSerfLANPort,
			SerfWAN: DefaultSerfWANPort,
			HTTPS:   PortDisabled,
		},
		DNSConfig: DNSConfig{
			AllowStale:      true,
			MaxStale:        Duration(87600 * time.Hour),
			UDPAnswerLimit:  3,
			RecursorTimeout: Duration(2 * time.Second),
			SOA:             SOA{Refresh: 3600, Retry: 600, Expire: 86400},
		},
		Limits: Limits{
			HTTPMaxConnsPerClient: 200,
			RPCMaxConnsPerClient:  100,
		},
		Cache: Cache{
			MaxEntries: 10000,
			MaxStale:   Duration(72 * time.Hour),
		},
		Autopilot: DefaultAutopilot(),
		KV:        KV{TombstoneTTL: Duration(15 * time.Minute)},
		ACL:       DefaultACL(),
	}
}
