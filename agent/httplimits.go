package agent

import (
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cairnd/cairn/agent/config"
	"github.com/cairnd/cairn/cluster/connlimit"
)

const (
	// httpIdleTimeout closes a keep-alive connection with no request for
	// this long. Client libraries reuse a connection within milliseconds
	// or keep it idle for up to 90 s (Go's and Consul's api default); past
	// a minute an idle connection is only an open file the agent pays for.
	httpIdleTimeout = 60 * time.Second

	// httpReadTimeout bounds reading one request, headers and body. The
	// largest body is a 512 KiB KV value, a second's work on any link;
	// 30 s only stops slow-body clients from holding a connection and a
	// handler. It does not cut blocking queries (up to 10 min) short: the
	// server lifts the read deadline once the body is read
	// (TestReadTimeoutSparesBlockingQueries pins that).
	httpReadTimeout = 30 * time.Second
)

// limitHTTP wraps the API listener with the per-client cap
// (limits.http_max_conns_per_client) and a total cap derived from the file
// limit, so a flood of HTTP connections cannot take the descriptors the
// server port and DNS need.
func (a *Agent) limitHTTP(ln net.Listener, name string) net.Listener {
	return connlimit.Wrap(ln, connlimit.Config{
		Name:         name,
		MaxPerClient: a.cfg.Limits.HTTPMaxConnsPerClient,
		MaxTotal:     connlimit.TotalCap(connlimit.FileLimit()),
	}, a.log.Named(name), connlimit.NewMetrics(a.reg, name))
}

// limitDNSTCP caps DNS-over-TCP connections at the file-limit-derived
// total (one client, typically every stub resolver of the host on
// loopback, may hold half), so a TCP flood on the DNS port cannot take
// the descriptors of the HTTP API or the server port. UDP is unaffected.
func (a *Agent) limitDNSTCP(ln net.Listener) net.Listener {
	return connlimit.Wrap(ln, connlimit.Config{
		Name:     "dns_tcp",
		MaxTotal: connlimit.TotalCap(connlimit.FileLimit()),
	}, a.log.Named("dns"), connlimit.NewMetrics(a.reg, "dns_tcp"))
}

// limitRequests applies limits.request_limits to the API: a token bucket
// per client IP for reads (GET) and one for writes. Over the rate, a
// request is answered 429 (enforcing) or only counted and logged
// (permissive). Off by default; h itself when disabled.
func (a *Agent) limitRequests(h http.Handler) http.Handler {
	rl := a.cfg.Limits.RequestLimits
	if rl.Mode == "" || rl.Mode == config.RequestLimitsDisabled {
		return h
	}
	reads, writes := connlimit.NewRateLimiter(rl.ReadRate), connlimit.NewRateLimiter(rl.WriteRate)
	if reads == nil && writes == nil {
		return h
	}
	limited := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_http_requests_rate_limited_total",
		Help: "HTTP API requests over limits.request_limits, by kind (read, write) and mode.",
	}, []string{"kind", "mode"})
	if err := a.reg.Register(limited); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok { //nolint:errorlint // Register returns it unwrapped
			limited = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	peerLog := connlimit.NewPeerLog(connlimit.LogInterval)
	log := a.log.Named("http")
	enforcing := rl.Mode == config.RequestLimitsEnforcing
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind, lim := "write", writes
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			kind, lim = "read", reads
		}
		ip := clientIP(r.RemoteAddr)
		if lim.Allow(ip) {
			h.ServeHTTP(w, r)
			return
		}
		limited.WithLabelValues(kind, rl.Mode).Inc()
		if peerLog.Allow(ip.String()) {
			log.Warn("request rate limit exceeded (logged once a minute per peer)",
				zap.String("remote", ip.String()), zap.String("kind", kind), zap.String("mode", rl.Mode))
		}
		if !enforcing {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Retry-After", "1")
		http.Error(w, "rate limit exceeded", http.StatusTooManyRequests)
	})
}

func clientIP(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
