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

// Request-rate limit modes (Consul's limits.request_limits names).
const (
	RateLimitDisabled   = "disabled"
	RateLimitPermissive = "permissive" // count and log, serve anyway
	RateLimitEnforcing  = "enforcing"  // refuse with structs.ErrRateLimited
)

// RequestLimits is limits.request_limits applied to the server port: a
// token bucket per client IP for reads and one for writes (requests per
// second; 0 or less is unlimited). Off unless Mode is permissive or
// enforcing. A client agent is one IP however many callers it serves, so
// the rates are per host.
type RequestLimits struct {
	Mode                string
	ReadRate, WriteRate float64
}

// rateGate applies RequestLimits to calls that came over the network
// (in-process calls have no peer and are never limited).
type rateGate struct {
	mode          string
	reads, writes *connlimit.RateLimiter
	limited       *prometheus.CounterVec
	peerLog       *connlimit.PeerLog
	log           *zap.Logger
	// exempt reports whether ip is another server of this datacenter:
	// a follower forwards its clients' writes and consistent reads, so
	// it is many clients, not one (asked only when a bucket is empty).
	exempt func(netip.Addr) bool
}

// newRateGate returns nil when the limit is off.
func newRateGate(l RequestLimits, reg prometheus.Registerer, log *zap.Logger, exempt func(netip.Addr) bool) *rateGate {
	if l.Mode != RateLimitPermissive && l.Mode != RateLimitEnforcing {
		return nil
	}
	g := &rateGate{mode: l.Mode, reads: connlimit.NewRateLimiter(l.ReadRate), writes: connlimit.NewRateLimiter(l.WriteRate),
		peerLog: connlimit.NewPeerLog(connlimit.LogInterval), log: log, exempt: exempt,
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_rpc_requests_rate_limited_total",
			Help: "Server-port requests over limits.request_limits, by kind (read, write) and mode.",
		}, []string{"kind", "mode"})}
	if g.reads == nil && g.writes == nil {
		return nil
	}
	if reg != nil {
		if err := reg.Register(g.limited); err != nil {
			if are, ok := err.(prometheus.AlreadyRegisteredError); ok { //nolint:errorlint // Register returns it unwrapped
				g.limited = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return g
}

// allow takes a token for method from the caller's bucket; over the rate
// it counts, logs at most once a minute per peer, and in enforcing mode
// refuses.
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
	kind, lim := "read", g.reads
	if structs.IsWriteMethod(method) {
		kind, lim = "write", g.writes
	}
	if lim.Allow(ip) || g.exempt != nil && g.exempt(ip) {
		return nil
	}
	g.limited.WithLabelValues(kind, g.mode).Inc()
	if g.peerLog.Allow(ip.String()) {
		g.log.Warn("rpc request rate limit exceeded (logged once a minute per peer)",
			zap.String("remote", ip.String()), zap.String("kind", kind), zap.String("method", method), zap.String("mode", g.mode))
	}
	if g.mode != RateLimitEnforcing {
		return nil
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
	if f.Error() != nil {
		return false
	}
	for _, srv := range f.Configuration().Servers {
		if ap, err := netip.ParseAddrPort(string(srv.Address)); err == nil && ap.Addr().Unmap() == ip {
			return true
		}
	}
	return false
}
