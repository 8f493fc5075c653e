package server

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cairnd/cairn/cluster/gossip"
	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"
	"go.uber.org/zap"
)

// UserEventPrefix marks serf user events that carry a Cairn/Consul event.
const UserEventPrefix = "consul:event:"

// monitorLeadership starts and stops the leader loop as Raft tells us.
func (s *Server) monitorLeadership() {
	defer s.wg.Done()
	var (
		stop context.CancelFunc
		done chan struct{}
	)
	stopLeader := func() {
		if stop != nil {
			stop()
			<-done
			stop = nil
		}
		s.readyForReads.Store(false)
	}
	defer stopLeader()
	for {
		select {
		case <-s.ctx.Done():
			return
		case isLeader := <-s.notifyCh:
			if isLeader && stop == nil {
				ctx, cancel := context.WithCancel(s.ctx) //nolint:govet // cancelled by stopLeader
				stop = cancel
				done = make(chan struct{})
				go func() {
					defer close(done)
					s.leaderLoop(ctx)
				}()
			} else if !isLeader {
				stopLeader()
			}
		}
	}
}

// leaderLoop: barrier first (reads after it see every commit of previous
// terms), then reconcile serf membership into the catalog.
func (s *Server) leaderLoop(ctx context.Context) {
	s.log.Info("cluster leadership acquired")
	defer s.log.Info("cluster leadership lost")
	for {
		err := s.barrier(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("leader barrier failed", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	s.readyForReads.Store(true)
	defer s.startTombstoneReaper(ctx)()
	// Session TTLs restart from this leader's clock (Consul's rule).
	_, sessions := s.State().SessionList()
	s.sessionTTL.start(sessions)
	defer s.sessionTTL.stop()
	s.reconcileAll()
	s.initializeACLs()
	tick := time.NewTicker(reconcileInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.sessionTTL.kick:
			s.expireSessions(ctx)
		case m := <-s.reconcileCh:
			s.reconcileMember(m)
		case <-tick.C:
			s.reconcileAll()
		}
	}
}

func (s *Server) reconcileAll() {
	members := s.lan.Members()
	known := map[string]bool{}
	for _, m := range members {
		known[m.Name] = true
		s.reconcileMember(m)
	}
	// Nodes with a serfHealth check that serf no longer knows were reaped.
	_, checks := s.State().ChecksInState(structs.HealthAny)
	for _, c := range checks {
		if c.CheckID == structs.SerfCheckID && !known[c.Node] {
			s.deregisterNode(c.Node)
		}
	}
}

func (s *Server) reconcileMember(m serf.Member) {
	if !s.IsLeader() {
		return
	}
	if m.Tags[gossip.TagDC] != "" && m.Tags[gossip.TagDC] != s.cfg.Datacenter {
		return
	}
	switch m.Status {
	case serf.StatusAlive:
		s.ensureNodeHealth(m, structs.HealthPassing, "Agent alive and reachable")
		s.maybeAddRaftPeer(m)
	case serf.StatusFailed:
		s.ensureNodeHealth(m, structs.HealthCritical, "Agent not live or unreachable")
	case serf.StatusLeft, serf.StatusNone:
		if m.Name == s.cfg.NodeName {
			return
		}
		s.removeRaftPeer(m)
		s.deregisterNode(m.Name)
	}
}

func (s *Server) ensureNodeHealth(m serf.Member, status, output string) {
	req := reconcileRegistration(s.State(), s.cfg.Datacenter, m, status, output)
	if req == nil {
		return
	}
	if _, _, err := s.apply(structs.RegisterRequestType, req); err != nil {
		s.log.Warn("reconcile member", zap.String("node", m.Name), zap.Error(err))
	}
}

// reconcileRegistration is the registration that gives member m's node
// its serfHealth check (status, output) and a server its consul service,
// or nil when st already says so.
//
// It is built from st now and applied later, through Raft, after whatever
// is in flight: the agent's own anti-entropy registers its node with meta
// and tagged addresses, often in the same instant (a new leader reconciles
// every member at once). So the node is never rewritten from this stale
// read unless its address must change: an absent node is registered with
// SkipNodeUpdate, which creates it if it is still absent at apply time and
// otherwise leaves what the agent registered meanwhile. (Writing it with
// the empty meta read here wiped the agent's node meta until its next
// sync; TestConsulConfigAndFilterE2E caught it.)
func reconcileRegistration(st *state.Store, dc string, m serf.Member, status, output string) *structs.RegisterRequest {
	_, node := st.Node(m.Name)
	addr := m.Addr.String()
	_, checks := st.NodeChecks(m.Name)
	var cur *structs.HealthCheck
	for _, c := range checks {
		if c.CheckID == structs.SerfCheckID {
			cur = c
		}
	}
	isServer := m.Tags[gossip.TagRole] == gossip.RoleServer
	needService := false
	var port int
	if isServer {
		port, _ = strconv.Atoi(m.Tags[gossip.TagPort])
		_, ns := st.NodeServices(m.Name)
		needService = ns == nil || ns.Services[structs.ConsulServiceID] == nil || ns.Services[structs.ConsulServiceID].Port != port
	}
	if node != nil && node.Address == addr && cur != nil && cur.Status == status && !needService {
		return nil
	}
	req := &structs.RegisterRequest{
		Datacenter:     dc,
		Node:           m.Name,
		ID:             m.Tags[gossip.TagID],
		Address:        addr,
		SkipNodeUpdate: node == nil || node.Address == addr,
		Check: &structs.HealthCheck{
			Node: m.Name, CheckID: structs.SerfCheckID, Name: structs.SerfCheckName,
			Status: status, Output: output,
		},
	}
	if node != nil {
		req.NodeMeta = node.Meta
		req.TaggedAddresses = node.TaggedAddresses
	}
	if needService {
		req.Service = &structs.NodeService{
			ID: structs.ConsulServiceID, Service: structs.ConsulServiceName, Port: port,
			Weights: &structs.Weights{Passing: 1, Warning: 1},
		}
	}
	return req
}

func (s *Server) deregisterNode(name string) {
	if _, n := s.State().Node(name); n == nil {
		return
	}
	if _, _, err := s.apply(structs.DeregisterRequestType, &structs.DeregisterRequest{Datacenter: s.cfg.Datacenter, Node: name}); err != nil {
		s.log.Warn("deregister left node", zap.String("node", name), zap.Error(err))
	}
}

func (s *Server) maybeAddRaftPeer(m serf.Member) {
	_, addr, ok := gossip.ServerAddr(m)
	if !ok || m.Name == s.cfg.NodeName {
		return
	}
	f := s.raft.GetConfiguration()
	if s.wait(f) != nil {
		return
	}
	for _, srv := range f.Configuration().Servers {
		if srv.ID == raft.ServerID(m.Name) {
			if string(srv.Address) == addr {
				return
			}
		}
	}
	// With bootstrap-expect, wait until the cluster bootstrapped itself;
	// after that, every new server becomes a voter.
	s.log.Info("adding raft peer", zap.String("node", m.Name), zap.String("addr", addr))
	if err := s.raft.AddVoter(raft.ServerID(m.Name), raft.ServerAddress(addr), 0, 0).Error(); err != nil {
		s.log.Warn("add raft peer", zap.String("node", m.Name), zap.Error(err))
	}
}

func (s *Server) removeRaftPeer(m serf.Member) {
	if m.Tags[gossip.TagRole] != gossip.RoleServer {
		return
	}
	f := s.raft.GetConfiguration()
	if s.wait(f) != nil {
		return
	}
	for _, srv := range f.Configuration().Servers {
		if srv.ID == raft.ServerID(m.Name) {
			s.log.Info("removing raft peer that left", zap.String("node", m.Name))
			if err := s.raft.RemoveServer(srv.ID, 0, 0).Error(); err != nil {
				s.log.Warn("remove raft peer", zap.String("node", m.Name), zap.Error(err))
			}
		}
	}
}

// lanEventLoop consumes LAN serf events: bootstrap-expect, reconcile,
// user events.
func (s *Server) lanEventLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case e := <-s.lan.Events():
			switch ev := e.(type) {
			case serf.MemberEvent:
				s.maybeBootstrap()
				for _, m := range ev.Members {
					if ev.Type == serf.EventMemberReap {
						m.Status = serf.StatusLeft
					}
					if ev.Type == serf.EventMemberJoin {
						s.floodWAN(m)
					}
					select {
					case s.reconcileCh <- m:
					default: // the periodic sweep catches up
					}
				}
			case serf.UserEvent:
				if s.cfg.UserEvent != nil && strings.HasPrefix(ev.Name, UserEventPrefix) {
					s.cfg.UserEvent(ev.Name, ev.Payload, uint64(ev.LTime))
				}
			}
		}
	}
}

// maybeBootstrap bootstraps Raft once bootstrap-expect servers of our
// datacenter are alive in the LAN pool and this server has no Raft state.
func (s *Server) maybeBootstrap() {
	if s.bootstrapped.Load() || s.cfg.BootstrapExpect < 2 {
		return
	}
	var servers []raft.Server
	for _, m := range s.lan.Members() {
		if m.Status != serf.StatusAlive {
			continue
		}
		dc, addr, ok := gossip.ServerAddr(m)
		if !ok || dc != s.cfg.Datacenter {
			continue
		}
		if m.Tags[gossip.TagExpect] != "" && m.Tags[gossip.TagExpect] != strconv.Itoa(s.cfg.BootstrapExpect) {
			s.log.Error("member has a different bootstrap-expect", zap.String("node", m.Name), zap.String("expect", m.Tags[gossip.TagExpect]))
			return
		}
		servers = append(servers, raft.Server{ID: raft.ServerID(m.Name), Address: raft.ServerAddress(addr), Suffrage: raft.Voter})
	}
	if len(servers) < s.cfg.BootstrapExpect {
		return
	}
	// Ask the others whether any of them already has peers: a server that
	// joins an existing cluster must not bootstrap a second one.
	for _, srv := range servers {
		if srv.ID == raft.ServerID(s.cfg.NodeName) {
			continue
		}
		var peers []string
		ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
		err := s.pool.call(ctx, string(srv.Address), structs.MethodStatusPeers, &structs.DCSpecificRequest{}, &peers)
		cancel()
		if err != nil {
			s.log.Debug("bootstrap: peer query failed, will retry on next member event", zap.String("peer", string(srv.Address)), zap.Error(err))
			return
		}
		if len(peers) > 0 {
			s.log.Info("bootstrap: an existing cluster was found, not bootstrapping", zap.String("peer", string(srv.Address)))
			s.bootstrapped.Store(true)
			return
		}
	}
	sort.Slice(servers, func(i, j int) bool { return servers[i].ID < servers[j].ID })
	s.bootstrap(servers)
}

// FireUserEvent broadcasts ev to the LAN pool.
func (s *Server) FireUserEvent(ev *structs.UserEvent) error {
	payload, err := structs.EncodeMsgpack(ev)
	if err != nil {
		return err
	}
	return s.lan.Serf().UserEvent(UserEventPrefix+ev.Name, payload, false)
}
