package connlimit

import "syscall"

const (
	// listenerShares is how many accepting listeners split the file limit:
	// HTTP, HTTPS, the server port and DNS over TCP. Each gets the same
	// share, so a full one cannot starve another.
	listenerShares = 4

	// minReserve is kept back from the listeners for everything else the
	// process opens: Pebble tables and WAL, the raft snapshot store, serf
	// sockets, outbound RPC and raft connections, log files, /proc reads.
	// A quarter of the limit, and never less than this.
	minReserve = 128

	// minTotalCap keeps a listener usable even under an absurdly low
	// file limit.
	minTotalCap = 16
)

// FileLimit is the process's current soft RLIMIT_NOFILE (Go raises the
// soft limit to the hard one at start-up), or 0 when unknown.
func FileLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	return r.Cur
}

// TotalCap is the total connection cap of one listener given the file
// limit nofile (0: unknown, no cap): (nofile - reserve) / 4, where reserve
// is max(nofile/4, 128). At the common 1,024 that is 192 per listener; at
// 65,536, 12,288.
func TotalCap(nofile uint64) int {
	if nofile == 0 || nofile > 1<<40 {
		return 0
	}
	reserve := max(nofile/4, minReserve)
	if nofile <= reserve {
		return minTotalCap
	}
	return max(int((nofile-reserve)/listenerShares), minTotalCap)
}
