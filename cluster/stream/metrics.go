package stream

import (
	"github.com/cairnd/cairn/cluster/promutil"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	events        *prometheus.CounterVec // kind
	subscriptions prometheus.Gauge
	sessions      prometheus.Gauge
	drops         prometheus.Counter
	resnapshots   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_stream_events_sent_total",
			Help: "Subscription frames sent to clients, by kind (snapshot, update, resumed, error).",
		}, []string{"kind"}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cairn_stream_subscriptions",
			Help: "Live subscriptions served by this server.",
		}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cairn_stream_sessions",
			Help: "Open subscription streams (one per subscribed client session).",
		}),
		drops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_stream_drops_total",
			Help: "Subscribers dropped because they did not take a frame within the send timeout; they re-snapshot on resume.",
		}),
		resnapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_stream_resnapshots_total",
			Help: "Resumed subscriptions answered with a fresh snapshot because the key changed since the client's index.",
		}),
	}
	m.events = promutil.Register(reg, m.events)
	m.subscriptions = promutil.Register(reg, m.subscriptions)
	m.sessions = promutil.Register(reg, m.sessions)
	m.drops = promutil.Register(reg, m.drops)
	m.resnapshots = promutil.Register(reg, m.resnapshots)
	return m
}

func (m *metrics) sent(k Kind) { m.events.WithLabelValues(k.String()).Inc() }
