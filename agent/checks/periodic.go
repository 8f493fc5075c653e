package checks

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Probe runs one check and reports its result. ctx carries the run's
// timeout and is cancelled by Stop.
type Probe interface {
	Probe(ctx context.Context) (status, output string)
}

// Schedule is when and how long a periodic check runs.
type Schedule struct {
	Interval time.Duration
	// Timeout bounds one run; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Periodic runs a Probe on a Schedule and notifies every result.
type Periodic struct {
	checkID string
	probe   Probe
	sched   Schedule
	notify  Notifier
	logger  *zap.Logger

	startOnce sync.Once
	stopOnce  sync.Once
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	started   bool
	mu        sync.Mutex // guards started against a racing Stop
}

// NewPeriodic returns a runner for p. Interval is taken as given (New
// enforces MinInterval); it must be > 0.
func NewPeriodic(checkID string, p Probe, s Schedule, n Notifier, logger *zap.Logger) *Periodic {
	if s.Timeout <= 0 {
		s.Timeout = DefaultTimeout
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Periodic{
		checkID: checkID,
		probe:   p,
		sched:   s,
		notify:  n,
		logger:  logger,
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
	}
}

// Start begins the schedule.
func (c *Periodic) Start() {
	c.startOnce.Do(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.ctx.Err() != nil {
			return // stopped before started
		}
		c.started = true
		go c.run()
	})
}

// Stop cancels the schedule and a run in flight and waits for the runner.
func (c *Periodic) Stop() {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		c.cancel()
		started := c.started
		c.mu.Unlock()
		if started {
			<-c.done
		}
	})
}

func (c *Periodic) run() {
	defer close(c.done)
	timer := time.NewTimer(randomStagger(c.sched.Interval))
	defer timer.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-timer.C:
		}
		c.runOnce()
		// Counted from the end of the run: runs never overlap.
		timer.Reset(c.sched.Interval + randomStagger(c.sched.Interval/JitterFraction))
	}
}

func (c *Periodic) runOnce() {
	ctx, cancel := context.WithTimeout(c.ctx, c.sched.Timeout)
	defer cancel()
	status, output := c.probe.Probe(ctx)
	if c.ctx.Err() != nil {
		return // stopped mid-run: the result is an artefact of the cancel
	}
	c.logger.Debug("check ran", zap.String("status", status))
	c.notify.UpdateCheck(c.checkID, status, output)
}

// randomStagger returns a uniform duration in [0, d).
func randomStagger(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// truncateHead keeps the first CheckBufSize bytes of s, noting the cut.
func truncateHead(s string) string {
	if len(s) <= CheckBufSize {
		return s
	}
	return s[:CheckBufSize] + " ... (truncated)"
}
