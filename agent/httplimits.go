package agent

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cairnd/cairn/connlimit"
)

const (
	// httpIdleTimeout closes a keep-alive connection with no request for
	// this long. Client libraries reuse a connection within milliseconds
	// or keep it idle for up to 90 s (Go's and Consul's api default); past
	// a minute an idle connection is only an open file the agent pays for.
	httpIdleTimeout = 60 * time.Second

	// httpBodyReadTimeout bounds reading a request body. The largest body
	// is a 512 KiB KV value, a second's work on any link; 30 s only stops
	// slow-body clients from holding a connection and a handler. It is not
	// http.Server.ReadTimeout: that deadline stays on the connection
	// while the handler runs and would cancel blocking queries (up to
	// 10 min) when it fires; this one is lifted once the body is read.
	httpBodyReadTimeout = 30 * time.Second
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

// withBodyDeadline gives every request body httpBodyReadTimeout to arrive,
// then lifts the deadline once the body is read (or the read failed), so
// the handler's own wait (a blocking query) is not cut short.
func withBodyDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if err := rc.SetReadDeadline(time.Now().Add(d)); err == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, lift: func() { _ = rc.SetReadDeadline(time.Time{}) }}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the connection's read deadline at the body's end.
type deadlineBody struct {
	io.ReadCloser
	lift func()
	once sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.ErrShortBuffer) {
		b.once.Do(b.lift)
	}
	return n, err
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
