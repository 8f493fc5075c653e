package agent

import (
	"testing"
	"time"
)

// TestCoordinateInterval: Consul's pacing of coordinate sends: at least
// the minimum, stretched to keep the cluster near the rate target, plus a
// stagger of up to as much again.
func TestCoordinateInterval(t *testing.T) {
	for _, tc := range []struct {
		members int
		base    time.Duration
	}{
		{0, 15 * time.Second},
		{1, 15 * time.Second},
		{960, 15 * time.Second}, // 960/64 = 15 s: the minimum still holds
		{961, 15015625 * time.Microsecond},
		{5000, 78125 * time.Millisecond},
		{100000, 1562500 * time.Millisecond},
	} {
		lo, hi := tc.base, 2*tc.base
		var sawStagger bool
		for range 200 {
			d := coordinateInterval(coordinateSyncInterval, coordinateRateTarget, tc.members)
			if d < lo || d >= hi {
				t.Fatalf("%d members: interval %v outside [%v, %v)", tc.members, d, lo, hi)
			}
			sawStagger = sawStagger || d > lo
		}
		if !sawStagger {
			t.Fatalf("%d members: 200 intervals, none staggered past %v", tc.members, lo)
		}
	}
}
