package agent

import (
	"math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/structs"
)

// Coordinate sync pacing, Consul's: every agent sends at most every
// coordinateSyncInterval (sync_coordinate_interval_min, 15s), and a
// bigger cluster stretches the interval so that all agents together send
// about coordinateRateTarget updates per second
// (sync_coordinate_rate_target, 64): 5,000 agents send every 78-156 s,
// not 333 Raft writes a second. Fast gossip (tests) sends every second.
const (
	coordinateSyncInterval = 15 * time.Second
	coordinateRateTarget   = 64.0
)

// coordinateInterval is the pause before the next send in a cluster of
// n members: max(min, n / rate seconds) plus a random stagger of up to as
// much again, so agents started together spread out (Consul's
// RateScaledInterval + RandomStagger).
func coordinateInterval(minInterval time.Duration, rate float64, n int) time.Duration {
	d := minInterval
	if scaled := time.Duration(float64(n) / rate * float64(time.Second)); scaled > d {
		d = scaled
	}
	return d + rand.N(d)
}

// syncCoordinates sends this agent's serf LAN coordinate to the servers,
// paced by coordinateInterval, until the agent stops. Each send is one
// Raft write (MessageType 12, a batch of one: see cluster/server doc.go).
// A failed send is retried at the next turn.
func (a *Agent) syncCoordinates() {
	next := func() time.Duration {
		if fastGossip() {
			return time.Second
		}
		n := 1
		if p := a.lanPool(); p != nil {
			n = p.Serf().NumNodes()
		}
		return coordinateInterval(coordinateSyncInterval, coordinateRateTarget, n)
	}
	t := time.NewTimer(next())
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(next())
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
