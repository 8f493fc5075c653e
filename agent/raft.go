package agent

import (
	"os"
	"strconv"
	"time"

	"github.com/cairnd/cairn/agent/config"
	"github.com/cairnd/cairn/cluster/server"
)

// applyRaftTuning copies Consul's raft_* settings. Environment overrides
// (CAIRN_RAFT_SNAPSHOT_THRESHOLD, CAIRN_RAFT_TRAILING_LOGS,
// CAIRN_RAFT_SNAPSHOT_INTERVAL) exist for the multi-process tests that
// force snapshot installs; operators use the config keys.
func applyRaftTuning(sc *server.Config, cfg *config.Config) {
	if v, err := strconv.ParseUint(os.Getenv("CAIRN_RAFT_SNAPSHOT_THRESHOLD"), 10, 64); err == nil && v > 0 {
		sc.RaftSnapshotThreshold = v
	}
	if v, err := strconv.ParseUint(os.Getenv("CAIRN_RAFT_TRAILING_LOGS"), 10, 64); err == nil && v > 0 {
		sc.RaftTrailingLogs = v
	}
	if v, err := time.ParseDuration(os.Getenv("CAIRN_RAFT_SNAPSHOT_INTERVAL")); err == nil && v > 0 {
		sc.RaftSnapshotInterval = v
	}
}
