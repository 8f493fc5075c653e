package forwarder

import (
	"errors"
	"net"
	"time"

	"github.com/cairnd/cairn/cluster/rpc"
)

const (
	// DefaultRebalanceInterval is Consul's minimum connection reuse
	// duration: long enough that reconnect churn is negligible, short
	// enough that a recovered server gets its share of clients within
	// minutes.
	DefaultRebalanceInterval = 2 * time.Minute

	// DefaultFailoverWithin is the promise made to DNS: after the current
	// server dies, calls flow again within this time if any server is up.
	DefaultFailoverWithin = 2 * time.Second

	// DefaultDialTimeout is per server attempt; half of FailoverWithin so
	// one blackholed server still leaves time to reach the next.
	DefaultDialTimeout = time.Second

	// noServersWait is how long a Call waits for a first server when none
	// is known at all before failing with structs.ErrNoServers: long
	// enough to ride out agent start-up, short enough not to hang DNS.
	noServersWait = time.Second

	// unreachableWait bounds the wait for a session when servers are known
	// but none answers and ctx has no deadline of its own.
	unreachableWait = 10 * time.Second

	// maxDialBackoff caps the pause after a whole round of failed dials,
	// so the first server to return is found within about a second.
	maxDialBackoff = time.Second

	// minDialBackoff is the first pause after a round of failed dials.
	minDialBackoff = 25 * time.Millisecond

	// newConnsPerSecPerServer is the reconnect rate Consul allows each
	// server to absorb from rebalancing clients; with ClusterSize known the
	// interval is stretched so that all clients rebalancing stay under it.
	newConnsPerSecPerServer = 64

	// maxCallBackoff caps the pause between retries of a read whose
	// stream failed on a still-live session.
	maxCallBackoff = 200 * time.Millisecond
)

// Config configures a Forwarder. Zero durations take the defaults.
type Config struct {
	// Datacenter is the local datacenter (for logs and future routing).
	Datacenter string
	// DialTimeout bounds one connection attempt to one server.
	DialTimeout time.Duration
	// RebalanceInterval is the base period of moving to a random server;
	// each period adds up to 50% jitter.
	RebalanceInterval time.Duration
	// FailoverWithin is how soon after losing its server the forwarder
	// must be connected elsewhere (it bounds the retry pauses).
	FailoverWithin time.Duration
	// ClusterSize, if set, returns the number of LAN members; the
	// rebalance interval is stretched to keep reconnects per server under
	// newConnsPerSecPerServer.
	ClusterSize func() int
	// TLS, if set, is asked at every dial for the client's TLS settings
	// (verify_outgoing, certificate), so a reload reaches the next dial.
	TLS rpc.TLSConfigurator
	// LocalAddr, if set, is the source address of every dial (nil: the
	// kernel picks). The fleet bench gives each simulated client agent
	// its own loopback address, as each real one has its own IP.
	LocalAddr net.Addr
}

// DefaultConfig returns the production settings.
func DefaultConfig() Config {
	return Config{
		Datacenter:        "dc1",
		DialTimeout:       DefaultDialTimeout,
		RebalanceInterval: DefaultRebalanceInterval,
		FailoverWithin:    DefaultFailoverWithin,
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.DialTimeout < 0 || c.RebalanceInterval < 0 || c.FailoverWithin < 0 {
		return errors.New("forwarder: negative duration in config")
	}
	if c.DialTimeout > 0 && c.FailoverWithin > 0 && c.DialTimeout > c.FailoverWithin {
		return errors.New("forwarder: DialTimeout exceeds FailoverWithin")
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.DialTimeout <= 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.RebalanceInterval <= 0 {
		c.RebalanceInterval = d.RebalanceInterval
	}
	if c.FailoverWithin <= 0 {
		c.FailoverWithin = d.FailoverWithin
	}
	return c
}
