package connlimit

import (
	"sync"
	"time"
)

const (
	// LogInterval is how often one peer may cause a warning line: an
	// operator learns who is misbehaving and why within a minute, while a
	// peer opening thousands of bad connections (about 6,000 lines in one
	// probe before this gate) costs one line a minute.
	LogInterval = time.Minute

	// maxPeers bounds PeerLog's memory under a spoofed-source or
	// many-address flood; when full, unknown peers are not logged (they
	// are still counted in the metrics) until old entries expire.
	maxPeers = 4096
)

// PeerLog allows one log line per peer per interval.
type PeerLog struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	last map[string]time.Time
}

// NewPeerLog returns a gate letting each peer through once per every.
func NewPeerLog(every time.Duration) *PeerLog {
	return &PeerLog{every: every, now: time.Now, last: make(map[string]time.Time)}
}

// Allow reports whether a line about peer may be logged now, and if so
// records it.
func (p *PeerLog) Allow(peer string) bool {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.last[peer]; ok && now.Sub(t) < p.every {
		return false
	}
	if len(p.last) >= maxPeers {
		for k, t := range p.last {
			if now.Sub(t) >= p.every {
				delete(p.last, k)
			}
		}
		if len(p.last) >= maxPeers {
			return false
		}
	}
	p.last[peer] = now
	return true
}
