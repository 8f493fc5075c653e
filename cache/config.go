package cache

import (
	"errors"
	"fmt"
	"time"
)

// Config configures a Catalog.
type Config struct {
	// Datacenter is the agent's own; lookups with dc "" mean it.
	Datacenter string
	// NodeName is the agent's node (the source of Near = "_agent").
	NodeName string
	// MaxEntries bounds the number of cached keys (cache.max_entries).
	MaxEntries int
	// MaxStale is how long an entry is served after the last successful
	// refresh while no server answers (cache.max_stale).
	MaxStale time.Duration
	// NegativeTTL is how long an empty answer to a cold miss is kept (the
	// SOA min TTL). 0 disables negative caching.
	NegativeTTL time.Duration
	// IdleTimeout is how long a key may go unasked before it is dropped.
	IdleTimeout time.Duration
	// WatchWait is the MaxQueryTime of the index watch's blocking query.
	WatchWait time.Duration
	// UnwatchedTTL is how long an answer for another datacenter (which
	// the index watch does not cover) is served before it is fetched again.
	UnwatchedTTL time.Duration
	// FetchTimeout bounds a cold miss while servers are thought up; during a
	// known outage misses get OutageFetchTimeout so DNS never hangs.
	FetchTimeout       time.Duration
	OutageFetchTimeout time.Duration
	// Refresh selects how cached local keys stay current: RefreshSubscribe
	// (default; needs Subscriber, else the index watch runs) or
	// RefreshIndexWatch (the old refetch rounds, for comparison).
	Refresh RefreshMode
	// Subscriber opens the subscriptions of RefreshSubscribe
	// (forwarder.Subscriptions on client agents); its events go to
	// Catalog.Deliver, Down and Up.
	Subscriber Subscriber
	// ReleaseMemory, if set, is called by the janitor once a burst of at
	// least ReleaseBurst fills has been followed by ReleaseQuiet without
	// one (memory.go). Client agents pass debug.FreeOSMemory followed by
	// resolver.TrimImage.
	ReleaseMemory func()
}

// Defaults. Each is a trade-off named here once.
const (
	// DefaultMaxStale is Consul's agent-cache default.
	DefaultMaxStale = 72 * time.Hour
	// DefaultIdleTimeout: long enough that a key asked every TTL-ish
	// interval keeps its watch, short enough that one-off names stop
	// costing a server-side blocking query soon.
	DefaultIdleTimeout = 3 * time.Minute
	// DefaultWatchWait: a blocking query returns at least this often, so
	// idle keys are noticed within IdleTimeout+WatchWait.
	DefaultWatchWait = time.Minute
	// DefaultUnwatchedTTL keeps keys without a watch within the same
	// one-second freshness promise as watched ones.
	DefaultUnwatchedTTL = 500 * time.Millisecond
	// DefaultFetchTimeout stays under the 2 s a stub resolver usually
	// waits, so a failing miss is a SERVFAIL rather than a timeout.
	DefaultFetchTimeout = 1500 * time.Millisecond
	// DefaultOutageFetchTimeout: while every watch is failing, a miss
	// gets one short try.
	DefaultOutageFetchTimeout = 200 * time.Millisecond
)

// DefaultConfig returns the defaults: 10,000 entries, 72h max stale.
func DefaultConfig() Config {
	return Config{
		Datacenter:         "dc1",
		MaxEntries:         10000,
		MaxStale:           DefaultMaxStale,
		IdleTimeout:        DefaultIdleTimeout,
		WatchWait:          DefaultWatchWait,
		UnwatchedTTL:       DefaultUnwatchedTTL,
		FetchTimeout:       DefaultFetchTimeout,
		OutageFetchTimeout: DefaultOutageFetchTimeout,
	}
}

// Validate reports the first invalid setting.
func (c *Config) Validate() error {
	switch {
	case c.Datacenter == "":
		return errors.New("cache: datacenter must be set")
	case c.MaxEntries < 1:
		return errors.New("cache: max_entries must be at least 1")
	case c.MaxStale < 0 || c.NegativeTTL < 0:
		return errors.New("cache: max_stale and negative ttl must not be negative")
	case c.UnwatchedTTL <= 0:
		return errors.New("cache: unwatched ttl must be positive")
	case c.Refresh > RefreshIndexWatch:
		return fmt.Errorf("cache: unknown refresh mode %d (field Refresh)", c.Refresh)
	case c.IdleTimeout <= 0 || c.WatchWait <= 0 || c.FetchTimeout <= 0 || c.OutageFetchTimeout <= 0:
		return errors.New("cache: idle timeout, watch wait and fetch timeouts must be positive")
	}
	return nil
}
