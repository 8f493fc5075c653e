package forwarder

import (
	"errors"

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
	m.requests = register(reg, m.requests)
	m.connections = register(reg, m.connections)
	m.retries = register(reg, m.retries)
	m.failovers = register(reg, m.failovers)
	m.rebalances = register(reg, m.rebalances)
	return m
}

// register adds c to reg, reusing an identical collector already there.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
