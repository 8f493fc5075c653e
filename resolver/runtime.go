package resolver

import (
	"os"
	"runtime"
	"runtime/debug"
)

// Client agent runtime settings (TuneClientRuntime). A client agent's
// steady state is all packed hits, which allocate nothing: the
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

// minProcs is the least GOMAXPROCS of a client agent. The UDP readers
// sleep in recvfrom outside the netpoller (see udp_linux.go), holding
// their P in a syscall. With a single P, sysmon takes it from every
// sleeping reader, and each packet then pays a P handoff and a sysmon
// wake-up; with a second (idle) P sysmon leaves a short syscall alone.
// It is not more parallelism: under taskset -c 0 both Ps share the core.
const minProcs = 2

// TuneClientRuntime applies the client settings above unless GOGC,
// GOMEMLIMIT or GOMAXPROCS are set in the environment (an operator's
// choice wins).
func TuneClientRuntime() {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < minProcs {
		runtime.GOMAXPROCS(minProcs)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(ClientGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(ClientMemoryLimit)
	}
}
