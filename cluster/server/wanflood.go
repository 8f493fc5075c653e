package server

import (
	"net"
	"strconv"

	"github.com/cairnd/cairn/cluster/gossip"
	"github.com/hashicorp/serf/serf"
	"go.uber.org/zap"
)

// floodWAN joins a server of our datacenter, just seen alive in the LAN
// pool, into the WAN pool (Consul's "flood join"): servers of one
// datacenter find each other on the WAN without `join --wan`, and a
// single `join --wan` to another datacenter then reaches all of them.
// The LAN member advertises its WAN port in the wan_join_port tag.
func (s *Server) floodWAN(m serf.Member) {
	if s.wan == nil || m.Status != serf.StatusAlive || m.Name == s.cfg.NodeName {
		return
	}
	if m.Tags[gossip.TagRole] != gossip.RoleServer || m.Tags[gossip.TagDC] != s.cfg.Datacenter {
		return
	}
	port, err := strconv.Atoi(m.Tags[gossip.TagWANJoinPort])
	if err != nil || port <= 0 {
		return
	}
	wanName := m.Name + "." + s.cfg.Datacenter
	for _, w := range s.wan.Members() {
		if w.Name == wanName && w.Status == serf.StatusAlive {
			return
		}
	}
	addr := net.JoinHostPort(m.Addr.String(), strconv.Itoa(port))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if _, err := s.wan.Join([]string{addr}); err != nil {
			s.log.Warn("WAN flood join failed", zap.String("server", m.Name), zap.String("addr", addr), zap.Error(err))
			return
		}
		s.log.Info("WAN flood join", zap.String("server", m.Name), zap.String("addr", addr))
	}()
}
