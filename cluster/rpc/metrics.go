package rpc

import (
	"github.com/cairnd/cairn/cluster/promutil"

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
	m.sessions = promutil.Register(reg, m.sessions)
	m.requests = promutil.Register(reg, m.requests)
	m.methods = promutil.Register(reg, m.methods)
	m.rejected = promutil.Register(reg, m.rejected)
	return m
}
