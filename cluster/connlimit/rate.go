package connlimit

import (
	"net/netip"
	"sync"
	"time"
)

// maxBuckets bounds RateLimiter's memory: one bucket per client IP seen
// recently. A bucket that has refilled completely carries no state and is
// dropped when the table is full; if it is still full, new clients are let
// through (failing open: the connection caps still bound them).
const maxBuckets = 1 << 16

// RateLimiter is a token bucket per client IP: rate requests a second on
// average, bursts of up to max(rate, 1). A nil or zero-rate limiter allows
// everything.
type RateLimiter struct {
	rate, burst float64
	now         func() time.Time

	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewRateLimiter returns a limiter of rate requests per second per IP, or
// nil (no limit) when rate <= 0.
func NewRateLimiter(rate float64) *RateLimiter {
	if rate <= 0 {
		return nil
	}
	return &RateLimiter{rate: rate, burst: max(rate, 1), now: time.Now, buckets: make(map[netip.Addr]*bucket)}
}

// Allow takes a token from ip's bucket, reporting false when it is empty.
func (l *RateLimiter) Allow(ip netip.Addr) bool {
	if l == nil {
		return true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[ip]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			full := time.Duration(l.burst / l.rate * float64(time.Second))
			for k, o := range l.buckets {
				if now.Sub(o.last) >= full {
					delete(l.buckets, k)
				}
			}
			if len(l.buckets) >= maxBuckets {
				return true
			}
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[ip] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
