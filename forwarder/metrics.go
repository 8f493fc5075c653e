package forwarder

import (
	"github.com/cairnd/cairn/cluster/promutil"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests    *prometheus.CounterVec // method, result: ok | error
	connections prometheus.Gauge
	retries     prometheus.Counter
	failovers   prometheus.Counter
	rebalances  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_forwarder_requests_total",
			Help: "RPCs sent to servers through the forwarder, by method and result (ok, error).",
		}, []string{"method", "result"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cairn_forwarder_connections",
			Help: "Open client-to-server connections (1 in steady state, 2 briefly while rebalancing).",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_forwarder_retries_total",
			Help: "RPC attempts repeated after a connection failure.",
		}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_forwarder_failovers_total",
			Help: "Server connections lost and replaced.",
		}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_forwarder_rebalances_total",
			Help: "Planned moves to another server.",
		}),
	}
	m.requests = promutil.Register(reg, m.requests)
	m.connections = promutil.Register(reg, m.connections)
	m.retries = promutil.Register(reg, m.retries)
	m.failovers = promutil.Register(reg, m.failovers)
	m.rebalances = promutil.Register(reg, m.rebalances)
	return m
}
