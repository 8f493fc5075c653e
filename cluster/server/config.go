package server

import (
	"errors"
	"fmt"
	"time"

	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Config is everything a server needs; the agent fills it from agent/config.
type Config struct {
	NodeName   string
	NodeID     string
	Datacenter string
	// DataDir holds raft/ (Pebble log+stable store) and snapshots/.
	// Ignored when InMemory.
	DataDir  string
	InMemory bool

	BootstrapExpect int

	BindAddr      string
	AdvertiseAddr string
	// AdvertiseAddrWAN is what the WAN pool advertises (default
	// AdvertiseAddr).
	AdvertiseAddrWAN string
	// Ports: 0 lets the kernel pick (the bound port is what is advertised
	// and gossiped); SerfWANPort -1 disables the WAN pool.
	RPCPort      int
	SerfLANPort  int
	SerfWANPort  int
	RetryJoin    []string
	RetryJoinWAN []string
	EncryptKey   []byte

	ReconnectTimeout time.Duration

	// RPCMaxConnsPerClient caps server-port connections from one IP
	// (limits.rpc_max_conns_per_client; 0 is unlimited).
	RPCMaxConnsPerClient int
	// RequestLimits rate-limits server-port requests per client IP
	// (limits.request_limits; off by default).
	RequestLimits RequestLimits
	// FastGossip shortens serf/memberlist timings (tests, --dev).
	FastGossip bool

	// Raft tuning (Consul's raft_snapshot_threshold etc.).
	RaftSnapshotThreshold uint64
	RaftSnapshotInterval  time.Duration
	RaftTrailingLogs      uint64
	// RaftCommitTimeout is hashicorp/raft's CommitTimeout: after this long
	// without writes the leader tells followers its commit index. 0 keeps
	// Raft's 50 ms; followers learn of commits sooner anyway (see
	// commitnudge.go), and tests set it long to show that.
	RaftCommitTimeout time.Duration
	// RaftNoSync skips fsync of the log (benchmarks of CPU only; never in
	// production: acknowledged writes could be lost on power failure).
	RaftNoSync bool

	// SessionTTLMin is the shortest session TTL accepted (Consul's
	// session_ttl_min); 0 means structs.SessionTTLMin (10s).
	SessionTTLMin time.Duration

	Build string

	// Autopilot is Consul's autopilot block (see autopilot.go).
	Autopilot AutopilotConfig

	// TombstoneTTL is how long a deleted KV key's tombstone lives before
	// the leader reaps it (kv.tombstone_ttl; 0 = DefaultTombstoneTTL).
	TombstoneTTL time.Duration

	Logger   *zap.Logger
	Registry prometheus.Registerer

	// TLS, if set, guards the server port: the listener, Raft and the
	// server-to-server pool (see cluster/rpc/tls.go). nil = plain.
	TLS rpc.TLSConfigurator

	// ACL is the acl block (see acl.go); zero = ACLs off.
	ACL ACLConfig

	// UserEvent, if set, receives every serf user event seen on the LAN.
	UserEvent func(name string, payload []byte, ltime uint64)
}

// DefaultConfig returns Consul's defaults for a single server.
func DefaultConfig() Config {
	return Config{
		Datacenter:            "dc1",
		BootstrapExpect:       1,
		BindAddr:              "127.0.0.1",
		RPCPort:               8300,
		SerfLANPort:           8301,
		SerfWANPort:           8302,
		ReconnectTimeout:      72 * time.Hour,
		RPCMaxConnsPerClient:  rpc.DefaultMaxConnsPerClient,
		RaftSnapshotThreshold: 16384,
		RaftSnapshotInterval:  30 * time.Second,
		RaftTrailingLogs:      10240,
		Autopilot:             DefaultAutopilotConfig(),
	}
}

// Validate reports the first problem with c.
func (c *Config) Validate() error {
	switch {
	case c.NodeName == "":
		return errors.New("server: node name is required")
	case c.Datacenter == "":
		return errors.New("server: datacenter is required")
	case !c.InMemory && c.DataDir == "":
		return errors.New("server: data dir is required (or run in memory with --dev)")
	case c.BootstrapExpect < 0:
		return fmt.Errorf("server: bootstrap-expect %d must be >= 0", c.BootstrapExpect)
	case c.RPCPort < 0 || c.RPCPort > 65535:
		return fmt.Errorf("server: bad server port %d", c.RPCPort)
	}
	return nil
}
