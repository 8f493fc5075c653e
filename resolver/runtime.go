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
//
// There is deliberately no soft memory limit (debug.SetMemoryLimit). An
// earlier 20 MiB limit kept a 10,000-name client at 32 MB RSS, but its
// live heap (≈13 MB) plus the runtime's own memory sat at the limit, so
// the heap goal never rose above the live heap: every background
// allocation (gossip, timers) started a collection. Idle after the fill
// it ran 6 collections a second at 7.8% CPU (0.5% without the limit). A
// cache's size is the operator's catalog, not ours to cap; headroom
// proportional to the live heap (GOGC) never thrashes.
const (
	// ClientGCPercent is the heap headroom over the live heap: a quarter
	// of Go's default (GOGC=100). Collector work per allocated byte
	// scales with 100/GOGC, and a client allocates only on fills and
	// refreshes; with 10,000 names filled it left RSS at 38 MB against
	// 41 MB at GOGC=50, at the same CPU for the fill.
	ClientGCPercent = 25
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

// TuneClientRuntime applies the client GC setting above unless GOGC is
// set in the environment (an operator's choice wins; so does GOMEMLIMIT,
// which the runtime reads itself).
func TuneClientRuntime() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(ClientGCPercent)
	}
}
