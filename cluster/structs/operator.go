package structs

import (
	"encoding/json"
	"fmt"
	"time"
)

// Outage-recovery RPC methods (snapshot, raft peer removal, autopilot).
// Request → response types:
const (
	MethodSnapshotSave               = "Snapshot.Save"                      // SnapshotRequest → SnapshotResponse (archive)
	MethodSnapshotRestore            = "Snapshot.Restore"                   // SnapshotRequest (archive) → SnapshotResponse
	MethodOperatorRaftRemovePeer     = "Operator.RaftRemovePeer"            // RaftRemovePeerRequest → struct{}
	MethodOperatorRaftTransferLeader = "Operator.RaftTransferLeader"        // RaftTransferLeaderRequest → TransferLeaderResponse
	MethodOperatorAutopilotGetConfig = "Operator.AutopilotGetConfiguration" // DCSpecificRequest → AutopilotConfig
	MethodOperatorServerHealth       = "Operator.ServerHealth"              // DCSpecificRequest → OperatorHealthReply
	MethodStatusRaftStats            = "Status.RaftStats"                   // struct{} → RaftStats (server to server)
)

// SnapshotRequest carries a snapshot archive (restore) or asks for one
// (save). AllowStale lets any server save its own view, as ?stale does.
type SnapshotRequest struct {
	Datacenter string
	AllowStale bool
	Archive    []byte
}

// SnapshotResponse carries the saved archive and the index it reflects.
type SnapshotResponse struct {
	Index   uint64
	Archive []byte
}

// RaftRemovePeerRequest names a Raft peer by ID or by address (exactly one).
type RaftRemovePeerRequest struct {
	Datacenter string
	ID         string
	Address    string
}

// RaftTransferLeaderRequest asks the leader to hand leadership over: to
// the server whose Raft ID is ID, or, with ID empty, to the most
// up-to-date other voter (hashicorp/raft picks it).
type RaftTransferLeaderRequest struct {
	Datacenter string
	ID         string
}

// TransferLeaderResponse is Consul's answer to a leadership transfer.
type TransferLeaderResponse struct {
	Success bool `json:"Success"`
}

// ReadableDuration is a duration that JSON shows as "200ms", as Consul's
// api.ReadableDuration does; msgpack carries it as nanoseconds.
type ReadableDuration time.Duration

// Duration returns d as a time.Duration.
func (d ReadableDuration) Duration() time.Duration { return time.Duration(d) }

func (d ReadableDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *ReadableDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"200ms\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = ReadableDuration(v)
	return nil
}

// AutopilotConfig is /v1/operator/autopilot/configuration, Consul's shape.
// Only CleanupDeadServers, LastContactThreshold, MaxTrailingLogs and
// ServerStabilizationTime have an effect in Cairn.
type AutopilotConfig struct {
	CleanupDeadServers      bool             `json:"CleanupDeadServers"`
	LastContactThreshold    ReadableDuration `json:"LastContactThreshold"`
	MaxTrailingLogs         uint64           `json:"MaxTrailingLogs"`
	MinQuorum               uint             `json:"MinQuorum"`
	ServerStabilizationTime ReadableDuration `json:"ServerStabilizationTime"`
	RedundancyZoneTag       string           `json:"RedundancyZoneTag"`
	DisableUpgradeMigration bool             `json:"DisableUpgradeMigration"`
	UpgradeVersionTag       string           `json:"UpgradeVersionTag"`
	CreateIndex             uint64           `json:"CreateIndex"`
	ModifyIndex             uint64           `json:"ModifyIndex"`
}

// ServerHealth is one server of /v1/operator/autopilot/health.
type ServerHealth struct {
	ID          string           `json:"ID"`
	Name        string           `json:"Name"`
	Address     string           `json:"Address"`
	SerfStatus  string           `json:"SerfStatus"`
	Version     string           `json:"Version"`
	Leader      bool             `json:"Leader"`
	LastContact ReadableDuration `json:"LastContact"`
	LastTerm    uint64           `json:"LastTerm"`
	LastIndex   uint64           `json:"LastIndex"`
	Healthy     bool             `json:"Healthy"`
	Voter       bool             `json:"Voter"`
	StableSince time.Time        `json:"StableSince"`
}

// OperatorHealthReply is /v1/operator/autopilot/health.
type OperatorHealthReply struct {
	Healthy          bool           `json:"Healthy"`
	FailureTolerance int            `json:"FailureTolerance"`
	Servers          []ServerHealth `json:"Servers"`
}

// RaftStats is one server's view of its own Raft progress, which the
// leader gathers for autopilot health.
type RaftStats struct {
	LastContact ReadableDuration
	LastTerm    uint64
	LastIndex   uint64
}
