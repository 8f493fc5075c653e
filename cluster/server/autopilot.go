package server

import (
	"context"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/cairnd/cairn/cluster/gossip"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

const (
	// autopilotInterval is how often the leader gathers server health and
	// cleans up dead servers (Consul's server_health_interval is 2s).
	autopilotInterval = 2 * time.Second
	// autopilotFastInterval is the same under FastGossip (tests, --dev).
	autopilotFastInterval = 200 * time.Millisecond
)

// AutopilotConfig is Consul's autopilot block, the parts Cairn acts on.
type AutopilotConfig struct {
	// CleanupDeadServers removes from Raft a server whose serf member
	// left, or failed and stayed unhealthy for ServerStabilizationTime,
	// when the removal keeps a quorum of live voters.
	CleanupDeadServers bool
	// LastContactThreshold: a server not heard from by the leader for
	// longer is unhealthy.
	LastContactThreshold time.Duration
	// ServerStabilizationTime: a server healthy for this long is stable
	// (reported as StableSince), and a failed server is removed only once
	// it has been unhealthy this long. New servers join as voters at once:
	// it does not delay promotion.
	ServerStabilizationTime time.Duration
	// MaxTrailingLogs: a server this many entries behind the leader is
	// unhealthy.
	MaxTrailingLogs uint64
}

// DefaultAutopilotConfig returns Consul's defaults.
func DefaultAutopilotConfig() AutopilotConfig {
	return AutopilotConfig{
		CleanupDeadServers:      true,
		LastContactThreshold:    200 * time.Millisecond,
		ServerStabilizationTime: 10 * time.Second,
		MaxTrailingLogs:         250,
	}
}

func (c AutopilotConfig) public() structs.AutopilotConfig {
	return structs.AutopilotConfig{
		CleanupDeadServers:      c.CleanupDeadServers,
		LastContactThreshold:    structs.ReadableDuration(c.LastContactThreshold),
		MaxTrailingLogs:         c.MaxTrailingLogs,
		ServerStabilizationTime: structs.ReadableDuration(c.ServerStabilizationTime),
	}
}

// autopilot is the leader's record of server health between passes.
type autopilot struct {
	mu     sync.Mutex
	last   *structs.OperatorHealthReply
	stable map[raft.ServerID]stability
	passes uint64 // health passes so far (tests wait on it)
}

type stability struct {
	healthy bool
	since   time.Time
}

// health returns the latest health report, nil before the first pass.
func (a *autopilot) health() *structs.OperatorHealthReply {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil {
		return nil
	}
	h := *a.last
	h.Servers = append([]structs.ServerHealth(nil), a.last.Servers...)
	return &h
}

// unhealthyFor is how long the leader's health passes have found server
// id unhealthy without a break (0 if healthy or never seen).
func (a *autopilot) unhealthyFor(id raft.ServerID, now time.Time) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.stable[id]
	if !ok || st.healthy {
		return 0
	}
	return now.Sub(st.since)
}

func (a *autopilot) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last, a.stable = nil, nil
}

// startAutopilot runs the autopilot loop until the server closes. It acts
// only while this server leads.
func (s *Server) startAutopilot() {
	interval := autopilotInterval
	if s.cfg.FastGossip {
		interval = autopilotFastInterval
	}
	s.registerAutopilotMetrics()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
			}
			if !s.IsLeader() || !s.readyForReads.Load() {
				s.autopilot.reset()
				continue
			}
			ctx, cancel := context.WithTimeout(s.ctx, interval)
			h := s.gatherHealth(ctx)
			cancel()
			if h == nil {
				continue
			}
			if s.cfg.Autopilot.CleanupDeadServers {
				s.pruneDeadServers()
			}
		}
	}()
}

// registerAutopilotMetrics exports the leader's last health report, as
// Consul's autopilot.healthy and autopilot.failure_tolerance; followers
// and a leader before its first pass report NaN (no view).
func (s *Server) registerAutopilotMetrics() {
	report := func(f func(h *structs.OperatorHealthReply) float64) func() float64 {
		return func() float64 {
			h := s.autopilot.health()
			if h == nil {
				return math.NaN()
			}
			return f(h)
		}
	}
	for _, g := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cairn_autopilot_healthy",
			Help: "1 when every server is healthy in the leader's autopilot view, 0 when not (NaN off the leader).",
		}, report(func(h *structs.OperatorHealthReply) float64 {
			if h.Healthy {
				return 1
			}
			return 0
		})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cairn_autopilot_failure_tolerance",
			Help: "How many voting servers can fail without losing quorum, in the leader's autopilot view (NaN off the leader).",
		}, report(func(h *structs.OperatorHealthReply) float64 { return float64(h.FailureTolerance) })),
	} {
		if err := s.cfg.Registry.Register(g); err != nil {
			s.log.Warn("metric registration", zap.Error(err))
		}
	}
}

// raftStats is this server's own progress, for the leader's health view.
func (s *Server) raftStats() structs.RaftStats {
	st := s.raft.Stats()
	term, _ := strconv.ParseUint(st["last_log_term"], 10, 64)
	idx, _ := strconv.ParseUint(st["last_log_index"], 10, 64)
	out := structs.RaftStats{LastTerm: term, LastIndex: idx}
	if !s.IsLeader() {
		out.LastContact = structs.ReadableDuration(s.lastContact())
	}
	return out
}

// gatherHealth builds Consul's health report from the Raft configuration,
// serf and each server's own Raft stats, and stores it.
func (s *Server) gatherHealth(ctx context.Context) *structs.OperatorHealthReply {
	f := s.raft.GetConfiguration()
	if s.wait(f) != nil {
		return nil
	}
	servers := f.Configuration().Servers
	members := map[string]serf.Member{}
	for _, m := range s.lan.Members() {
		members[m.Name] = m
	}
	self := s.raftStats()
	leaderTerm, _ := strconv.ParseUint(s.raft.Stats()["term"], 10, 64)
	leaderID := raft.ServerID(s.cfg.NodeName)

	out := make([]structs.ServerHealth, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		m, known := members[string(srv.ID)]
		h := structs.ServerHealth{
			ID: string(srv.ID), Name: string(srv.ID), Address: string(srv.Address),
			SerfStatus: "none", Leader: srv.ID == leaderID, Voter: srv.Suffrage == raft.Voter,
		}
		if known {
			h.SerfStatus = m.Status.String()
			h.Version = m.Tags[gossip.TagBuild]
			if id := m.Tags[gossip.TagID]; id != "" {
				h.ID = id
			}
		}
		out[i] = h
		if srv.ID == leaderID {
			out[i].LastTerm, out[i].LastIndex = self.LastTerm, self.LastIndex
			continue
		}
		out[i].LastContact = -1
		if !known || m.Status != serf.StatusAlive {
			continue
		}
		wg.Add(1)
		go func(i int, addr string) {
			defer wg.Done()
			var st structs.RaftStats
			if err := s.pool.call(ctx, addr, structs.MethodStatusRaftStats, &struct{}{}, &st); err != nil {
				s.log.Debug("autopilot: raft stats", zap.String("server", addr), zap.Error(err))
				return
			}
			out[i].LastContact, out[i].LastTerm, out[i].LastIndex = st.LastContact, st.LastTerm, st.LastIndex
		}(i, string(srv.Address))
	}
	wg.Wait()

	cfg := s.cfg.Autopilot
	now := time.Now()
	reply := &structs.OperatorHealthReply{Healthy: true}
	voters, healthyVoters := 0, 0
	s.autopilot.mu.Lock()
	defer s.autopilot.mu.Unlock()
	if s.autopilot.stable == nil {
		s.autopilot.stable = map[raft.ServerID]stability{}
	}
	seen := map[raft.ServerID]bool{}
	for i := range out {
		h := &out[i]
		id := servers[i].ID
		seen[id] = true
		h.Healthy = h.SerfStatus == serf.StatusAlive.String() &&
			h.LastContact >= 0 && h.LastContact.Duration() <= cfg.LastContactThreshold &&
			h.LastTerm == leaderTerm && h.LastIndex+cfg.MaxTrailingLogs >= self.LastIndex
		if h.LastContact < 0 {
			h.LastContact = 0
		}
		st, ok := s.autopilot.stable[id]
		if !ok || st.healthy != h.Healthy {
			st = stability{healthy: h.Healthy, since: now}
			s.autopilot.stable[id] = st
		}
		h.StableSince = st.since
		if !h.Healthy {
			reply.Healthy = false
		}
		if h.Voter {
			voters++
			if h.Healthy {
				healthyVoters++
			}
		}
	}
	for id := range s.autopilot.stable {
		if !seen[id] {
			delete(s.autopilot.stable, id)
		}
	}
	if ft := healthyVoters - (voters/2 + 1); ft > 0 {
		reply.FailureTolerance = ft
	}
	reply.Servers = out
	s.autopilot.last = reply
	s.autopilot.passes++
	return reply
}

// pruneDeadServers removes from Raft the servers serf reports failed or
// left, as Consul's cleanup_dead_servers does (see deadServersToRemove).
// A removed server that comes back is added again by the leader's serf
// reconciliation.
func (s *Server) pruneDeadServers() {
	f := s.raft.GetConfiguration()
	if s.wait(f) != nil {
		return
	}
	status := map[string]serf.MemberStatus{}
	grace := s.cfg.Autopilot.ServerStabilizationTime
	for _, m := range s.lan.Members() {
		status[m.Name] = m.Status
		// A failed server must have stayed unhealthy for the
		// stabilization time before it goes: a paused or restarting
		// server keeps its vote, so a second fault meanwhile does not
		// cost the quorum.
		if m.Status == serf.StatusFailed && s.autopilot.unhealthyFor(raft.ServerID(m.Name), time.Now()) < grace {
			status[m.Name] = serf.StatusAlive
		}
	}
	remove, refused := deadServersToRemove(f.Configuration().Servers, status, raft.ServerID(s.cfg.NodeName))
	for _, srv := range refused {
		s.log.Warn("autopilot: not removing dead server, the rest would lack a quorum", zap.String("server", string(srv.ID)))
	}
	for _, srv := range remove {
		s.log.Info("autopilot: removing dead server", zap.String("server", string(srv.ID)), zap.String("address", string(srv.Address)))
		if err := s.raft.RemoveServer(srv.ID, 0, 0).Error(); err != nil {
			s.log.Warn("autopilot: remove dead server", zap.String("server", string(srv.ID)), zap.Error(err))
			return
		}
	}
}

// deadServersToRemove picks, from the Raft servers, those serf reports
// failed or left (never self), in order, as long as after each removal
// the voters still alive form a quorum of the voters that remain; the
// dead voters past that point are returned as refused. Servers serf does
// not know are left alone: after a full restart Raft may elect a leader
// before gossip has rejoined.
func deadServersToRemove(servers []raft.Server, status map[string]serf.MemberStatus, self raft.ServerID) (remove, refused []raft.Server) {
	voters, deadVoters := 0, 0
	var dead []raft.Server
	for _, srv := range servers {
		if srv.Suffrage == raft.Voter {
			voters++
		}
		st, known := status[string(srv.ID)]
		if srv.ID == self || !known || (st != serf.StatusFailed && st != serf.StatusLeft) {
			continue
		}
		dead = append(dead, srv)
		if srv.Suffrage == raft.Voter {
			deadVoters++
		}
	}
	for i, srv := range dead {
		if srv.Suffrage == raft.Voter {
			remaining, alive := voters-1, voters-deadVoters
			if alive < remaining/2+1 {
				for _, r := range dead[i:] {
					if r.Suffrage == raft.Voter {
						refused = append(refused, r)
					}
				}
				return remove, refused
			}
			voters--
			deadVoters--
		}
		remove = append(remove, srv)
	}
	return remove, nil
}
