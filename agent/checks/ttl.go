package checks

import (
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/structs"
)

// TTL is a check the service drives itself (through the HTTP API's
// pass/warn/fail/update). Each update resets the timer; when TTL passes
// without one the check turns critical with output "TTL expired".
type TTL struct {
	checkID string
	ttl     time.Duration
	notify  Notifier
	logger  *zap.Logger

	// mu serialises notifications so an update and an expiry cannot
	// reach the Notifier in the opposite order to their decisions.
	mu         sync.Mutex
	deadline   time.Time
	lastOutput string
	stopped    bool

	startOnce sync.Once
	stopOnce  sync.Once
	stopCh    chan struct{}
	reset     chan struct{}
	done      chan struct{}
	started   bool
}

// NewTTL returns a TTL check; it expires ttl after Start unless updated.
func NewTTL(checkID string, ttl time.Duration, n Notifier, logger *zap.Logger) *TTL {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &TTL{
		checkID: checkID,
		ttl:     ttl,
		notify:  n,
		logger:  logger,
		stopCh:  make(chan struct{}),
		reset:   make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
}

// Start arms the timer.
func (t *TTL) Start() {
	t.startOnce.Do(func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.stopped {
			return
		}
		t.started = true
		t.deadline = time.Now().Add(t.ttl)
		go t.run()
	})
}

// Stop disarms the timer and waits for the runner.
func (t *TTL) Stop() {
	t.stopOnce.Do(func() {
		t.mu.Lock()
		t.stopped = true
		started := t.started
		t.mu.Unlock()
		close(t.stopCh)
		if started {
			<-t.done
		}
	})
}

// Pass marks the check passing.
func (t *TTL) Pass(output string) { _ = t.Update(structs.HealthPassing, output) }

// Warn marks the check warning.
func (t *TTL) Warn(output string) { _ = t.Update(structs.HealthWarning, output) }

// Fail marks the check critical.
func (t *TTL) Fail(output string) { _ = t.Update(structs.HealthCritical, output) }

// Update sets status and output and resets the timer.
func (t *TTL) Update(status, output string) error {
	switch status {
	case structs.HealthPassing, structs.HealthWarning, structs.HealthCritical:
	default:
		return fmt.Errorf("checks: check %q: invalid status %q", t.checkID, status)
	}
	output = truncateHead(output)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return nil
	}
	t.lastOutput = output
	t.deadline = time.Now().Add(t.ttl)
	t.notify.UpdateCheck(t.checkID, status, output)
	select {
	case t.reset <- struct{}{}:
	default:
	}
	return nil
}

func (t *TTL) run() {
	defer close(t.done)
	timer := time.NewTimer(t.ttl)
	defer timer.Stop()
	for {
		select {
		case <-t.stopCh:
			return
		case <-t.reset:
			t.mu.Lock()
			timer.Reset(time.Until(t.deadline))
			t.mu.Unlock()
		case <-timer.C:
			t.mu.Lock()
			if left := time.Until(t.deadline); left > 0 {
				timer.Reset(left) // updated since the timer was set
			} else if !t.stopped {
				t.logger.Warn("check TTL expired")
				t.notify.UpdateCheck(t.checkID, structs.HealthCritical, t.expiredOutput())
				// The timer stays spent: critical until the next Update
				// re-arms it, with no repeated notices.
			}
			t.mu.Unlock()
		}
	}
}

// expiredOutput follows Consul: the last output is kept for the operator.
func (t *TTL) expiredOutput() string {
	if t.lastOutput == "" {
		return "TTL expired"
	}
	return fmt.Sprintf("TTL expired (last output before timeout follows): %s", t.lastOutput)
}
