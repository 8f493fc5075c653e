package checks

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/cairnd/cairn/cluster/structs"
)

// userAgent identifies the agent to checked services, as Consul's
// "Consul Health Check".
const userAgent = "Cairn Health Check"

// HTTP probes a URL: 2xx is passing, 429 (Too Many Requests) warning,
// anything else or a transport error critical.
type HTTP struct {
	url    string
	method string
	header http.Header
	client *http.Client
}

// NewHTTP returns an HTTP probe. method defaults to GET.
func NewHTTP(url, method string, header http.Header, tlsSkipVerify bool) *HTTP {
	if method == "" {
		method = http.MethodGet
	}
	tr := &http.Transport{
		Proxy:       nil, // a health check must reach the service itself
		DialContext: (&net.Dialer{Timeout: DefaultTimeout}).DialContext,
		// One connection per run: a check must notice a service that
		// stopped accepting connections, which a pooled one would hide.
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: tlsSkipVerify}, //nolint:gosec // operator's choice per check
	}
	return &HTTP{
		url:    url,
		method: method,
		header: header.Clone(),
		client: &http.Client{
			Transport: tr,
			// Redirects are followed (Go's default of 10), as Consul.
		},
	}
}

// Probe runs one request.
func (h *HTTP) Probe(ctx context.Context) (string, string) {
	req, err := http.NewRequestWithContext(ctx, h.method, h.url, nil)
	if err != nil {
		return structs.HealthCritical, err.Error()
	}
	for k, vs := range h.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", userAgent)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/plain, text/*, */*")
	}
	if host := req.Header.Get("Host"); host != "" {
		req.Host = host
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return structs.HealthCritical, truncateHead(err.Error())
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, CheckBufSize))
	// The rest is left unread: keep-alives are off, so nothing is reused.
	output := fmt.Sprintf("HTTP %s %s: %s Output: %s", h.method, h.url, resp.Status, body)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		return structs.HealthPassing, output
	case resp.StatusCode == http.StatusTooManyRequests:
		return structs.HealthWarning, output
	default:
		return structs.HealthCritical, output
	}
}
