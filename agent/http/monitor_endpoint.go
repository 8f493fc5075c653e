package http

import (
	"bytes"
	nethttp "net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// agentMonitor streams log lines as text until the client goes away.
func (a *handler) agentMonitor(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	level := strings.ToLower(r.URL.Query().Get("loglevel"))
	switch level {
	case "":
		level = "info"
	case "trace", "debug", "info", "warn", "error":
	default:
		return badRequest("Unknown log level: %s", level)
	}
	lines, err := a.b.Monitor(r.Context(), level)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(nethttp.StatusOK)
	rc := nethttp.NewResponseController(w)
	_ = rc.Flush()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			if !bytes.HasSuffix(line, []byte("\n")) {
				line = append(line, '\n')
			}
			if _, err := w.Write(line); err != nil {
				return nil // client gone
			}
			_ = rc.Flush()
		}
	}
}

// agentMetrics serves Prometheus text (?format=prometheus) or a JSON
// summary in the shape of Consul's /v1/agent/metrics.
func (a *handler) agentMetrics(w nethttp.ResponseWriter, r *nethttp.Request, _ string) error {
	g := a.b.Metrics()
	if r.URL.Query().Get("format") == "prometheus" {
		promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}).ServeHTTP(w, r)
		return nil
	}
	families, err := g.Gather()
	if err != nil && len(families) == 0 {
		return err
	}
	return writeJSON(w, r, summarize(families, time.Now()))
}

type metricsSummary struct {
	Timestamp string
	Gauges    []gaugeValue
	Points    []struct{}
	Counters  []sampledValue
	Samples   []sampledValue
}

type gaugeValue struct {
	Name   string
	Value  float64
	Labels map[string]string
}

type sampledValue struct {
	Name   string
	Count  uint64
	Sum    float64
	Mean   float64
	Labels map[string]string
}

func summarize(families []*dto.MetricFamily, now time.Time) metricsSummary {
	out := metricsSummary{
		Timestamp: now.UTC().Truncate(10 * time.Second).Format("2006-01-02 15:04:05 -0700 MST"),
		Gauges:    []gaugeValue{}, Points: []struct{}{}, Counters: []sampledValue{}, Samples: []sampledValue{},
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			name := f.GetName()
			switch {
			case m.Gauge != nil:
				out.Gauges = append(out.Gauges, gaugeValue{name, m.GetGauge().GetValue(), labels})
			case m.Untyped != nil:
				out.Gauges = append(out.Gauges, gaugeValue{name, m.GetUntyped().GetValue(), labels})
			case m.Counter != nil:
				v := m.GetCounter().GetValue()
				out.Counters = append(out.Counters, sampledValue{name, 1, v, v, labels})
			case m.Summary != nil:
				out.Samples = append(out.Samples, sample(name, m.GetSummary().GetSampleCount(), m.GetSummary().GetSampleSum(), labels))
			case m.Histogram != nil:
				out.Samples = append(out.Samples, sample(name, m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum(), labels))
			}
		}
	}
	return out
}

func sample(name string, count uint64, sum float64, labels map[string]string) sampledValue {
	s := sampledValue{Name: name, Count: count, Sum: sum, Labels: labels}
	if count > 0 {
		s.Mean = sum / float64(count)
	}
	return s
}
