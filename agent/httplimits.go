package agent

import (
	"net"
	"net/http"
	"net/netip"
	"time"

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
	lim := connlimit.NewRequestLimiter(rl.Mode, rl.ReadRate, rl.WriteRate, "cairn_http_requests_rate_limited_total",
		"HTTP API requests over limits.request_limits, by kind (read, write) and mode.", a.reg, a.log.Named("http"))
	if lim == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		write := r.Method != http.MethodGet && r.Method != http.MethodHead
		if !lim.Refuse(clientIP(r.RemoteAddr), write, nil) {
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
