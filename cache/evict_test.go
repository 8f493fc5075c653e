package cache

import (
	"errors"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/testutil"
)

// TestJanitorSleepsWhenIdle: with no question for quietTicks ticks the
// janitor stops ticking; the next question wakes it and reads a clock no
// older than itself; the janitor then ticks again.
func TestJanitorSleepsWhenIdle(t *testing.T) {
	c := newTestCatalog(t, newFakeTier())
	testutil.Eventually(t, 10*time.Second, "the janitor asleep", func() error {
		if !c.asleep.Load() {
			return errors.New("still ticking")
		}
		return nil
	})
	asleepClock := c.clock.Load()
	before := time.Now().UnixNano()
	c.touch()
	if c.asleep.Load() {
		t.Fatal("a question did not wake the janitor")
	}
	if got := c.clock.Load(); got < before {
		t.Fatalf("clock after the wake-up %d is older than the question %d (it was %d asleep)", got, before, asleepClock)
	}
	woke := c.clock.Load()
	testutil.Eventually(t, 5*time.Second, "the janitor ticking again", func() error {
		if c.clock.Load() <= woke {
			return errors.New("clock not advanced")
		}
		return nil
	})
}
