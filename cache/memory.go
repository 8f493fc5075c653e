package cache

import "time"

// Returning memory after a burst of fills (Config.ReleaseMemory).
//
// A client agent allocates only while it fills or replaces entries: packed
// hits allocate nothing, so once a burst of fills ends (an agent's first
// minutes, a deploy that moves many services) no allocation starts the
// next collection. The burst's garbage then stays in the heap, and its
// pages stay resident, up to the collector's headroom over the live heap
// (GOGC), until the runtime's forced collection two minutes later; even
// then the scavenger keeps about 10% over the heap goal. Measured on a
// client agent holding 10,000 names: ≈5 MB of its anonymous RSS was
// freed-but-kept heap. One collection and a release of the free pages
// once fills have stopped for ReleaseQuiet returns it, at the cost of one
// collection (milliseconds, marking the live heap) per burst. Small
// trickles of fills (fewer than ReleaseBurst) never trigger it, so a
// steadily busy agent does not collect more often than GOGC says.
const (
	// ReleaseBurst is the least number of fills since the last release
	// worth a collection: 256 fills allocate about 1 MB.
	ReleaseBurst = 256
	// ReleaseQuiet is how long fills must have stopped: bursts (a start,
	// a fleet-wide change) are over within seconds.
	ReleaseQuiet = 5 * time.Second
)

// fillBurst follows the fill count to tell when a burst has ended; the
// janitor owns it.
type fillBurst struct {
	seen     uint64    // the count at the last look
	since    time.Time // when the count last moved
	released uint64    // the count at the last release
}

// ended reports, at most once per burst, that at least ReleaseBurst fills
// happened since the last release and none in the last ReleaseQuiet.
func (b *fillBurst) ended(now time.Time, fills uint64) bool {
	if fills != b.seen || b.since.IsZero() {
		b.seen, b.since = fills, now
		return false
	}
	if fills-b.released < ReleaseBurst || now.Sub(b.since) < ReleaseQuiet {
		return false
	}
	b.released = fills
	return true
}

// wait is how long until ended may report the burst seen so far, if a
// release is pending: a sleeping janitor wakes for it (ok false: none).
func (b *fillBurst) wait(now time.Time) (time.Duration, bool) {
	if b.since.IsZero() || b.seen-b.released < ReleaseBurst {
		return 0, false
	}
	return max(0, b.since.Add(ReleaseQuiet).Sub(now)), true
}
