package resolver

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"testing"
)

// TestClientRuntimeHeadroomScales: under the client settings the heap
// goal keeps its headroom over the live heap however large the cache
// grows. A 20 MiB soft memory limit did not: past it the goal fell to the
// live heap itself, so every allocation at idle (gossip, timers) started
// a collection (6 a second, 7.8% CPU, on a client holding 10,000 names).
func TestClientRuntimeHeadroomScales(t *testing.T) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOGC or GOMEMLIMIT set in the environment: the operator's settings win")
	}
	prevPercent := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	})
	TuneClientRuntime()

	for _, mib := range []int{4, 32, 64} {
		live := make([][]byte, mib<<10) // mib MiB live in 1 KiB pieces
		for i := range live {
			live[i] = make([]byte, 1<<10)
		}
		runtime.GC()
		s := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/goal:bytes"}}
		rtmetrics.Read(s)
		runtime.KeepAlive(live)
		heapLive, goal := s[0].Value.Uint64(), s[1].Value.Uint64()
		// The goal is live × (1 + GOGC/100); allow 5% for the runtime's
		// rounding of what it counts as live.
		want := heapLive + heapLive*ClientGCPercent/100*95/100
		if goal < want {
			t.Errorf("%d MiB cached: heap goal %.1f MiB over a live heap of %.1f MiB, want at least %.1f MiB (GOGC %d headroom)",
				mib, float64(goal)/(1<<20), float64(heapLive)/(1<<20), float64(want)/(1<<20), ClientGCPercent)
		}
	}
}
