package rpc

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// serverMetrics are the server side's collectors.
type serverMetrics struct {
	sessions prometheus.Gauge
	requests *prometheus.CounterVec // result: ok | error
	methods  *prometheus.CounterVec // method: a registered method's name
	rejected *prometheus.CounterVec // reason: short label naming why a connection or stream was dropped
}

func newServerMetrics(reg prometheus.Registerer) *serverMetrics {
	m := &serverMetrics{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cairn_rpc_sessions",
			Help: "Open RPC (yamux) sessions accepted by this server.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_rpc_requests_total",
			Help: "RPC requests handled by this server, by result.",
		}, []string{"result"}),
		methods: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_rpc_method_requests_total",
			Help: "RPC requests received over the wire for each registered method (the fleet bench counts reads per change with it).",
		}, []string{"method"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_rpc_rejected_total",
			Help: "Connections or streams closed for bad input or limits, by reason.",
		}, []string{"reason"}),
	}
	m.sessions = register(reg, m.sessions)
	m.requests = register(reg, m.requests)
	m.methods = register(reg, m.methods)
	m.rejected = register(reg, m.rejected)
	return m
}

// register adds c to reg (nil reg: keep c unregistered). When an identical
// collector is already registered (several servers in one test process
// sharing a registry) the existing one is used.
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
