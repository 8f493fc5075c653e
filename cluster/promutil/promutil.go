// Package promutil holds the one Prometheus helper every metrics-owning
// package of Cairn shares.
package promutil

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register adds c to reg and returns the collector to use: c itself, or
// the identical collector already registered (several servers or agents of
// one test process share a registry). A nil reg keeps c unregistered.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
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
