package resolver

import (
	"errors"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the resolver's Prometheus series. Counters for each result
// are resolved once so the hot path does no label lookup.
type metrics struct {
	queries  *prometheus.CounterVec
	byRcode  [dns.RcodeBadCookie + 1]prometheus.Counter
	other    prometheus.Counter
	latency  prometheus.Histogram
	recursed prometheus.Counter
}

// resultLabel names a response code for the result label; lower-case
// rcode mnemonics ("noerror", "nxdomain", "servfail", "refused", ...).
func resultLabel(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		b := []byte(s)
		for i, c := range b {
			if c >= 'A' && c <= 'Z' {
				b[i] = c + 'a' - 'A'
			}
		}
		return string(b)
	}
	return "other"
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_dns_queries_total",
			Help: "DNS queries answered, by response code (result).",
		}, []string{"result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cairn_dns_query_duration_seconds",
			Help: "Time from a parsed query to its written answer.",
			// 10µs .. ~5s: local answers take microseconds, recursion up to
			// recursor_timeout per upstream.
			Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10),
		}),
		recursed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_dns_recursor_queries_total",
			Help: "Queries passed to the recursors.",
		}),
	}
	for rc := range m.byRcode {
		if _, ok := dns.RcodeToString[rc]; ok {
			m.byRcode[rc] = m.queries.WithLabelValues(resultLabel(rc))
		}
	}
	m.other = m.queries.WithLabelValues("other")
	if reg != nil {
		for _, c := range []prometheus.Collector{m.queries, m.latency, m.recursed} {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if !errors.As(err, &are) {
					return nil, err
				}
				return nil, errors.New("resolver: metrics already registered (one Server per registry)")
			}
		}
	}
	return m, nil
}

func (m *metrics) count(rcode int) {
	if rcode >= 0 && rcode < len(m.byRcode) && m.byRcode[rcode] != nil {
		m.byRcode[rcode].Inc()
		return
	}
	m.other.Inc()
}
