package config

import (
	"fmt"
	"time"

	"github.com/cairnd/cairn/cluster/server"
)

// Autopilot is Consul's autopilot block (servers only). Consul's other
// keys (redundancy zones, upgrade migration) are Enterprise features and
// are not accepted.
type Autopilot struct {
	// CleanupDeadServers lets the leader remove failed servers from Raft
	// when doing so keeps a quorum.
	CleanupDeadServers bool `json:"cleanup_dead_servers"`
	// LastContactThreshold: a server the leader has not heard from for
	// longer is unhealthy.
	LastContactThreshold Duration `json:"last_contact_threshold"`
	// ServerStabilizationTime: how long a server must be healthy to be
	// reported stable, and failed before cleanup removes it.
	ServerStabilizationTime Duration `json:"server_stabilization_time"`
	// MaxTrailingLogs: a server further behind the leader is unhealthy.
	MaxTrailingLogs int `json:"max_trailing_logs"`
}

// DefaultAutopilot returns Consul's defaults.
func DefaultAutopilot() Autopilot {
	return Autopilot{
		CleanupDeadServers:      true,
		LastContactThreshold:    Duration(200 * time.Millisecond),
		ServerStabilizationTime: Duration(10 * time.Second),
		MaxTrailingLogs:         250,
	}
}

// validate returns errors without the "autopilot." prefix.
func (a *Autopilot) validate() error {
	switch {
	case a.LastContactThreshold <= 0:
		return fmt.Errorf("last_contact_threshold: must be positive, got %s", a.LastContactThreshold)
	case a.ServerStabilizationTime < 0:
		return fmt.Errorf("server_stabilization_time: must not be negative, got %s", a.ServerStabilizationTime)
	case a.MaxTrailingLogs < 0:
		return fmt.Errorf("max_trailing_logs: must not be negative, got %d", a.MaxTrailingLogs)
	}
	return nil
}

// ServerConfig is the server's view of the block.
func (a Autopilot) ServerConfig() server.AutopilotConfig {
	return server.AutopilotConfig{
		CleanupDeadServers:      a.CleanupDeadServers,
		LastContactThreshold:    a.LastContactThreshold.Duration(),
		ServerStabilizationTime: a.ServerStabilizationTime.Duration(),
		MaxTrailingLogs:         uint64(a.MaxTrailingLogs),
	}
}
