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

// minProcs is the least GOMAXPROCS of an agent whose UDP readers sleep
// in recvfrom outside the netpoller (see udp_linux.go), holding their P in
// a syscall. With a single P, sysmon takes it from every sleeping reader,
// and each packet then pays a P handoff and a sysmon wake-up; with a
// second (idle) P sysmon leaves a short syscall alone. It is not more
// parallelism: under taskset -c 0 both Ps share the core. Server agents
// read through the netpoller instead (listenUDP) and keep their default.
const minProcs = 2

// ensureProcs raises GOMAXPROCS to minProcs when the readers sleep in
// syscalls, unless GOMAXPROCS is set in the environment (an operator's
// choice wins).
func ensureProcs() {
	if readersSleepInSyscall && os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < minProcs {
		runtime.GOMAXPROCS(minProcs)
	}
}

// TuneClientRuntime applies the client GC settings above unless GOGC or
// GOMEMLIMIT are set in the environment (an operator's choice wins).
func TuneClientRuntime() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(ClientGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(ClientMemoryLimit)
	}
}
