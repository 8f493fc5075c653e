package server

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/connlimit"
	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/structs"
)

// rpcLimits are the server port's limits: the defaults, with Consul's
// rpc_max_conns_per_client from the config (0 there means unlimited).
func rpcLimits(cfg Config) rpc.Limits {
	lim := rpc.DefaultLimits()
	lim.MaxConnsPerClient = cfg.RPCMaxConnsPerClient
	if lim.MaxConnsPerClient == 0 {
		lim.MaxConnsPerClient = rpc.NoLimit
	}
	return lim
}

// RequestLimits is limits.request_limits applied to the server port: a
// token bucket per client IP for reads and one for writes (requests per
// second; 0 or less is unlimited). Off unless Mode is connlimit's
// permissive or enforcing. A client agent is one IP however many callers
// it serves, so the rates are per host.
type RequestLimits struct {
	Mode                string
	ReadRate, WriteRate float64
}

// rateGate applies RequestLimits to calls that came over the network
// (in-process calls have no peer and are never limited). exempt reports
// whether an IP is another server of this datacenter: a follower forwards
// its clients' writes and consistent reads, so it is many clients, not one
// (asked only when a bucket is empty).
type rateGate struct {
	lim    *connlimit.RequestLimiter
	exempt func(netip.Addr) bool
}

// newRateGate returns nil when the limit is off.
func newRateGate(l RequestLimits, reg prometheus.Registerer, log *zap.Logger, exempt func(netip.Addr) bool) *rateGate {
	lim := connlimit.NewRequestLimiter(l.Mode, l.ReadRate, l.WriteRate, "cairn_rpc_requests_rate_limited_total",
		"Server-port requests over limits.request_limits, by kind (read, write) and mode.", reg, log)
	if lim == nil {
		return nil
	}
	return &rateGate{lim: lim, exempt: exempt}
}

// allow refuses a network call over its client's rate in enforcing mode
// with structs.ErrRateLimited.
func (g *rateGate) allow(ctx context.Context, method string) error {
	if g == nil {
		return nil
	}
	addr, ok := rpc.PeerFromContext(ctx)
	if !ok {
		return nil
	}
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return nil
	}
	ip := ap.Addr().Unmap()
	write := structs.IsWriteMethod(method)
	if !g.lim.Refuse(ip, write, g.exempt, zap.String("method", method)) {
		return nil
	}
	kind := "read"
	if write {
		kind = "write"
	}
	return fmt.Errorf("%w: %s from %s", structs.ErrRateLimited, kind, ip)
}

// isRaftPeerIP reports whether ip is the address of a server in this
// server's Raft configuration.
func (s *Server) isRaftPeerIP(ip netip.Addr) bool {
	if s.raft == nil {
		return false
	}
	f := s.raft.GetConfiguration()
	if s.wait(f) != nil {
		return false
	}
	for _, srv := range f.Configuration().Servers {
		if ap, err := netip.ParseAddrPort(string(srv.Address)); err == nil && ap.Addr().Unmap() == ip {
			return true
		}
	}
	return false
}
