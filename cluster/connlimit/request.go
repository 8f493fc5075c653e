package connlimit

import (
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/promutil"
)

// Request-limit modes, Consul's limits.request_limits.mode names.
const (
	ModeDisabled   = "disabled"
	ModePermissive = "permissive" // count and log, serve anyway
	ModeEnforcing  = "enforcing"  // refuse
)

// RequestLimiter is limits.request_limits for one kind of listener (the
// HTTP API, the server port): a token bucket per client IP for reads and
// one for writes; a request over the rate is counted in the listener's
// metric, logged at most once a minute per peer and, in enforcing mode,
// refused.
type RequestLimiter struct {
	mode          string
	reads, writes *RateLimiter
	limited       *prometheus.CounterVec
	peerLog       *PeerLog
	log           *zap.Logger
}

// NewRequestLimiter returns the limiter of mode with readRate and
// writeRate requests a second per client IP, counting refusals in the
// counter metric (labels kind, mode), or nil when the limit is off (mode
// neither permissive nor enforcing, or no positive rate).
func NewRequestLimiter(mode string, readRate, writeRate float64, metric, help string, reg prometheus.Registerer, log *zap.Logger) *RequestLimiter {
	if mode != ModePermissive && mode != ModeEnforcing {
		return nil
	}
	reads, writes := NewRateLimiter(readRate), NewRateLimiter(writeRate)
	if reads == nil && writes == nil {
		return nil
	}
	return &RequestLimiter{mode: mode, reads: reads, writes: writes, peerLog: NewPeerLog(LogInterval), log: log,
		limited: promutil.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: metric, Help: help}, []string{"kind", "mode"}))}
}

// Mode is the limiter's mode.
func (l *RequestLimiter) Mode() string { return l.mode }

// Refuse takes a token for a read or a write from ip's bucket and reports
// whether the request must be refused: only over the rate, in enforcing
// mode, and when exempt (asked only then; nil: nobody) does not hold for
// ip. Over the rate the request is counted and logged, with fields.
func (l *RequestLimiter) Refuse(ip netip.Addr, write bool, exempt func(netip.Addr) bool, fields ...zap.Field) bool {
	if l == nil {
		return false
	}
	kind, lim := "read", l.reads
	if write {
		kind, lim = "write", l.writes
	}
	if lim.Allow(ip) || exempt != nil && exempt(ip) {
		return false
	}
	l.limited.WithLabelValues(kind, l.mode).Inc()
	if l.peerLog.Allow(ip.String()) {
		l.log.Warn("request rate limit exceeded (logged once a minute per peer)",
			append([]zap.Field{zap.String("remote", ip.String()), zap.String("kind", kind), zap.String("mode", l.mode)}, fields...)...)
	}
	return l.mode == ModeEnforcing
}
