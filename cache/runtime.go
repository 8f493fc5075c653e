package cache

import (
	"os"
	"runtime/debug"
)

// Client agent runtime settings (TuneClientRuntime). A client agent's
// steady state is all hits on the zero-allocation wire path: the
// collector only runs while keys are filled or refreshed, so a tight heap
// costs little CPU and keeps the agent small on every host.
const (
	// ClientGCPercent halves Go's default heap headroom (GOGC=100).
	ClientGCPercent = 50
	// ClientMemoryLimit is the soft limit of the Go runtime's memory
	// (debug.SetMemoryLimit): past it the collector runs harder and
	// returns freed pages sooner. Soft: a larger live heap is still
	// served (the runtime caps GC CPU at about half).
	ClientMemoryLimit = 20 << 20
)

// TuneClientRuntime applies the client settings above unless GOGC or
// GOMEMLIMIT are set in the environment (an operator's choice wins).
func TuneClientRuntime() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(ClientGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(ClientMemoryLimit)
	}
}
