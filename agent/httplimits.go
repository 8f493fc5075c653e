package agent

import (
	"net"
	"time"

	"github.com/cairnd/cairn/connlimit"
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
func (a *Agent) limitHTTP(ln net.Listener) net.Listener {
	return connlimit.Wrap(ln, connlimit.Config{
		Name:         "http",
		MaxPerClient: a.cfg.Limits.HTTPMaxConnsPerClient,
		MaxTotal:     connlimit.TotalCap(connlimit.FileLimit()),
	}, a.log.Named("http"), connlimit.NewMetrics(a.reg, "http"))
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
