package testutil

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	var n atomic.Int32
	err := Wait(context.Background(), 5*time.Second, func() error {
		if n.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n.Load() != 3 {
		t.Fatalf("Wait = %v after %d calls, want nil after 3", err, n.Load())
	}
	err = Wait(context.Background(), 30*time.Millisecond, func() error { return errors.New("never") })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a condition that never holds = %v, want deadline exceeded", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Wait(ctx, time.Minute, func() error { return errors.New("never") }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a cancelled context = %v, want canceled", err)
	}
}
