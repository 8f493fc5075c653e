package agent

import (
	"time"

	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/structs"
)

// coordinateSyncInterval is how often an agent sends its LAN coordinate
// to the servers (Consul's sync_coordinate_interval_min, 15s); fast
// gossip (tests) sends every second.
const coordinateSyncInterval = 15 * time.Second

// syncCoordinates sends this agent's serf LAN coordinate to the servers
// every coordinateSyncInterval until the agent stops. Each send is one
// Raft write (MessageType 12, a batch of one: see cluster/server doc.go).
// A failed send is retried at the next tick.
func (a *Agent) syncCoordinates() {
	interval := coordinateSyncInterval
	if fastGossip() {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
		p := a.lanPool()
		if p == nil {
			continue
		}
		c, err := p.Serf().GetCoordinate()
		if err != nil || c == nil {
			continue // coordinates disabled
		}
		args := structs.CoordinateUpdateRequest{Datacenter: a.cfg.Datacenter, Node: a.cfg.NodeName, Coord: c}
		var out structs.WriteResponse
		if err := a.RPC(a.ctx, structs.MethodCoordinateUpdate, &args, &out); err != nil && a.ctx.Err() == nil {
			a.log.Debug("coordinate update failed", zap.Error(err))
		}
	}
}
