package local

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnd/cairn/agent/checks"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

// runSyncer runs s in the background for the test's lifetime.
func runSyncer(t *testing.T, s *Syncer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// The Run tests run in a synctest bubble (as the reaper's does): the clock is
// fake and moves only when every goroutine in the bubble is blocked, so
// the syncer's timers fire at exact, repeatable instants.

func TestRunRetriesThenSyncsChangesPromptly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, cat := NewState(), newMemCatalog()
		cat.setDown(true)
		s := newSyncer(t, st, cat)
		_ = st.AddService(webService(), []*structs.HealthCheck{webCheck()})
		ttl := checks.NewTTL("web-ttl", time.Minute, st, nil)
		ttl.Start()
		defer ttl.Stop()
		runSyncer(t, s)
		testutil.Advance(100 * time.Millisecond) // several retries at 10-50 ms
		if cat.service(node, "web-1") != nil {
			t.Fatal("synced while down")
		}
		cat.setDown(false)
		// The retry already scheduled fires within RetryMax plus its jitter.
		testutil.Advance(s.cfg.RetryMax + s.cfg.RetryMax/2)
		if cat.service(node, "web-1") == nil {
			t.Fatalf("no full sync within %v of the servers' return", s.cfg.RetryMax+s.cfg.RetryMax/2)
		}

		// A change is synced ChangeDelay after it: not before (that is
		// the coalescing window), not later.
		passing := func() bool {
			c := cat.check(node, "web-ttl")
			return c != nil && c.Status == structs.HealthPassing
		}
		ttl.Pass("healthy")
		testutil.Advance(s.cfg.ChangeDelay - time.Millisecond)
		if passing() {
			t.Fatal("TTL pass synced before the change delay")
		}
		testutil.Advance(time.Millisecond)
		if !passing() {
			t.Fatalf("TTL pass not in the catalog %v after the change", s.cfg.ChangeDelay)
		}

		// A burst of changes is coalesced into one write.
		w := cat.writeCount()
		for i := range 20 {
			_ = st.AddCheck(&structs.HealthCheck{CheckID: "burst", Status: structs.HealthPassing, Output: string(rune('a' + i))})
		}
		testutil.Advance(s.cfg.ChangeDelay)
		if c := cat.check(node, "burst"); c == nil || c.Output != "t" {
			t.Fatalf("burst not synced one change delay later: %+v", c)
		}
		if got := cat.writeCount() - w; got != 1 {
			t.Fatalf("20 quick changes caused %d writes, want 1", got)
		}
	})
}

func TestTriggerFullRepairs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, cat := NewState(), newMemCatalog()
		s := newSyncer(t, st, cat)
		_ = st.AddService(webService(), nil)
		runSyncer(t, s)
		synctest.Wait()
		if cat.service(node, "web-1") == nil {
			t.Fatal("no full sync at start")
		}
		cat.edit(func(m *memCatalog) { delete(m.services[node], "web-1") })
		s.TriggerFull()
		synctest.Wait()
		if cat.service(node, "web-1") == nil {
			t.Fatal("TriggerFull did not repair the catalog at once")
		}
	})
}

func TestChangeDuringSyncStaysDirty(t *testing.T) {
	st, cat := NewState(), newMemCatalog()
	s := newSyncer(t, st, cat)
	_ = st.AddService(webService(), []*structs.HealthCheck{webCheck()})
	var once sync.Once
	cat.onWrite = func(string) {
		once.Do(func() { st.UpdateCheck("web-ttl", structs.HealthPassing, "changed mid-flight") })
	}
	mustSync(t, s.SyncFull)
	if c := cat.check(node, "web-ttl"); c.Status != structs.HealthCritical {
		t.Fatalf("setup: catalog check %+v", c)
	}
	mustSync(t, s.SyncChanges)
	if c := cat.check(node, "web-ttl"); c.Status != structs.HealthPassing {
		t.Fatalf("change made during an RPC was lost: %+v", c)
	}
}

func TestPeriodicFullSyncRepairs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 30 * time.Millisecond
		st, cat := NewState(), newMemCatalog()
		s := NewSyncer(SyncConfig{Datacenter: "dc1", NodeName: node, Address: "10.0.0.1", Interval: interval}, st, cat, nil)
		_ = st.AddService(webService(), nil)
		runSyncer(t, s)
		synctest.Wait()
		if cat.service(node, "web-1") == nil {
			t.Fatal("no full sync at start")
		}
		cat.edit(func(m *memCatalog) {
			delete(m.services[node], "web-1")
			m.services[node]["stray"] = &structs.NodeService{ID: "stray", Service: "stray"}
		})
		repaired := func() bool { return cat.service(node, "web-1") != nil && cat.service(node, "stray") == nil }
		// The next full sync comes Interval plus a stagger of up to one
		// Interval (a one-node cluster) after the last one.
		testutil.Advance(interval - time.Millisecond)
		if repaired() {
			t.Fatal("full sync before the interval")
		}
		testutil.Advance(interval + time.Millisecond)
		if !repaired() {
			t.Fatalf("no periodic repair within %v", 2*interval)
		}
	})
}
