package testutil

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Poll intervals: start short so fast conditions cost little wall time,
// back off so slow ones (a raft election, a process start) do not spin.
const (
	firstPoll = 5 * time.Millisecond
	maxPoll   = 100 * time.Millisecond
)

// Eventually calls cond until it returns nil, failing the test with cond's
// last error once timeout has passed. what names the awaited condition.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := Wait(context.Background(), timeout, cond); err != nil {
		t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
	}
}

// Wait calls cond until it returns nil, ctx ends or timeout passes, and
// returns nil or cond's last error. For code that must not call t.Fatal
// (helpers running off the test goroutine, benchmarks).
func Wait(ctx context.Context, timeout time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pause := firstPoll
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(pause):
		}
		pause = min(pause*2, maxPoll)
	}
}
