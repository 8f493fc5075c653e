package connlimit

import (
	"net/netip"
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewRateLimiter(2) // 2/s, bursts of 2
	l.now = func() time.Time { return now }
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	steps := []struct {
		advance time.Duration
		ip      netip.Addr
		want    bool
	}{
		{0, a, true}, {0, a, true}, {0, a, false}, // burst of 2, then empty
		{0, b, true},                       // another client has its own bucket
		{250 * time.Millisecond, a, false}, // half a token
		{250 * time.Millisecond, a, true},  // one token after 0.5 s
		{0, a, false},
		{10 * time.Second, a, true}, {0, a, true}, {0, a, false}, // refills to the burst, no more
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		if got := l.Allow(s.ip); got != s.want {
			t.Fatalf("step %d: Allow(%s) = %v, want %v", i, s.ip, got, s.want)
		}
	}
	if NewRateLimiter(0) != nil || !(*RateLimiter)(nil).Allow(a) {
		t.Fatal("a zero rate must mean no limiter, and a nil limiter allows all")
	}
}
