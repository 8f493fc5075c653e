package cache

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/testutil"
	"go.uber.org/zap"
)

// TestFillBurstEnded: a release is due once per burst of at least
// ReleaseBurst fills, ReleaseQuiet after the last fill; trickles and
// bursts still running are not; wait says when a sleeping janitor must
// look.
func TestFillBurstEnded(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type look struct {
		at    time.Duration
		fills uint64
		want  bool
	}
	for _, c := range []struct {
		name  string
		looks []look
	}{
		{"burst then quiet", []look{{0, 0, false}, {time.Second, 300, false}, {time.Second + ReleaseQuiet - 1, 300, false},
			{time.Second + ReleaseQuiet, 300, true}, {time.Minute, 300, false}}},
		{"trickle below the burst size", []look{{0, 0, false}, {time.Second, ReleaseBurst - 1, false}, {time.Hour, ReleaseBurst - 1, false}}},
		{"still filling", []look{{0, 0, false}, {ReleaseQuiet, 400, false}, {2 * ReleaseQuiet, 800, false}, {3*ReleaseQuiet - 1, 800, false},
			{3 * ReleaseQuiet, 800, true}}},
		{"second burst counts from the release", []look{{0, 300, false}, {ReleaseQuiet, 300, true}, {2 * ReleaseQuiet, 300 + ReleaseBurst - 1, false},
			{4 * ReleaseQuiet, 300 + ReleaseBurst - 1, false}, {5 * ReleaseQuiet, 300 + ReleaseBurst, false}, {6 * ReleaseQuiet, 300 + ReleaseBurst, true}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b fillBurst
			for i, l := range c.looks {
				if got := b.ended(at(l.at), l.fills); got != l.want {
					t.Fatalf("look %d (%v, %d fills): ended = %v, want %v", i, l.at, l.fills, got, l.want)
				}
			}
		})
	}
	var b fillBurst
	if _, ok := b.wait(t0); ok {
		t.Fatal("wait: a release pending before any fill")
	}
	b.ended(t0, 0)
	b.ended(at(time.Second), 500)
	if w, ok := b.wait(at(2 * time.Second)); !ok || w != ReleaseQuiet-time.Second {
		t.Fatalf("wait = %v, %v; want %v, true", w, ok, ReleaseQuiet-time.Second)
	}
	if !b.ended(at(time.Second+ReleaseQuiet), 500) {
		t.Fatal("burst not reported")
	}
	if _, ok := b.wait(at(time.Minute)); ok {
		t.Fatal("wait: a release still pending after it was reported")
	}
}

// TestReleaseAfterFills: the janitor calls ReleaseMemory once after a
// burst of fills ends, also when no question follows the burst (the
// janitor sleeps, and wakes for it), and not again without new fills.
func TestReleaseAfterFills(t *testing.T) {
	tier := newFakeTier()
	cfg := DefaultConfig()
	var released atomic.Int64
	cfg.ReleaseMemory = func() { released.Add(1) }
	c, err := New(cfg, tier.rpc, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for i := range ReleaseBurst {
		if _, err := c.ServiceNodes(context.Background(), "", fmt.Sprintf("svc-%d", i), "", false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := released.Load(); n != 0 {
		t.Fatalf("%d releases during the burst", n)
	}
	testutil.Eventually(t, ReleaseQuiet+5*time.Second, "release after the burst", func() error {
		if n := released.Load(); n != 1 {
			return fmt.Errorf("%d releases", n)
		}
		return nil
	})
	time.Sleep(time.Second)
	if n := released.Load(); n != 1 {
		t.Fatalf("%d releases without new fills, want 1", n)
	}
}
