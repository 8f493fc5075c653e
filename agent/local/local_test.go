package local

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/cairnd/cairn/agent/checks"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

const node = "node-1"

func newSyncer(t *testing.T, st *State, cat *memCatalog) *Syncer {
	t.Helper()
	return NewSyncer(SyncConfig{
		Datacenter: "dc1", NodeName: node, NodeID: "0b5c6a1e-0000-4000-8000-000000000001", Address: "10.0.0.1",
		TaggedAddresses: map[string]string{"lan": "10.0.0.1"}, NodeMeta: map[string]string{"rack": "r1"},
		ClusterSize: func() int { return 3 },
		Interval:    time.Hour, ChangeDelay: 20 * time.Millisecond, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
	}, st, cat, zaptest.NewLogger(t))
}

func mustSync(t *testing.T, f func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f(ctx); err != nil {
		t.Fatal(err)
	}
}

func webService() *structs.NodeService {
	return &structs.NodeService{ID: "web-1", Service: "web", Tags: []string{"v1"}, Port: 8080, Meta: map[string]string{"team": "a"}}
}

func webCheck() *structs.HealthCheck {
	return &structs.HealthCheck{CheckID: "web-ttl", Name: "web ttl", Type: checks.TypeTTL}
}

func TestAddedServiceReachesCatalog(t *testing.T) {
	st, cat := NewState(), newMemCatalog()
	s := newSyncer(t, st, cat)
	if err := st.AddService(webService(), []*structs.HealthCheck{webCheck()}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, s.SyncFull)
	svc := cat.service(node, "web-1")
	if svc == nil || svc.Service != "web" || svc.Port != 8080 || svc.Weights == nil || *svc.Weights != (structs.Weights{Passing: 1, Warning: 1}) {
		t.Fatalf("catalog service %+v", svc)
	}
	c := cat.check(node, "web-ttl")
	if c == nil || c.Status != structs.HealthCritical || c.ServiceID != "web-1" || c.ServiceName != "web" || c.Node != node {
		t.Fatalf("catalog check %+v", c)
	}
	cat.edit(func(m *memCatalog) {
		n := m.nodes[node]
		if n.Address != "10.0.0.1" || n.Meta["rack"] != "r1" || n.ID == "" {
			t.Errorf("catalog node %+v", n)
		}
	})
	// One register carried node + service + check.
	if w := cat.writeCount(); w != 1 {
		t.Fatalf("writes = %d, want 1", w)
	}
}

func TestSecondSyncWritesNothing(t *testing.T) {
	st, cat := NewState(), newMemCatalog()
	s := newSyncer(t, st, cat)
	_ = st.AddService(webService(), []*structs.HealthCheck{webCheck(), {CheckID: "web-2", ServiceID: "web-1", Status: structs.HealthPassing}})
	_ = st.AddCheck(&structs.HealthCheck{CheckID: "mem", Name: "Memory", Status: structs.HealthWarning, Output: "87%"})
	mustSync(t, s.SyncFull)
	w := cat.writeCount()
	mustSync(t, s.SyncFull)
	mustSync(t, s.SyncChanges)
	// Re-adding identical records and repeating a result change nothing.
	_ = st.AddService(webService(), nil)
	st.UpdateCheck("mem", structs.HealthWarning, "87%")
	mustSync(t, s.SyncChanges)
	mustSync(t, s.SyncFull)
	if got := cat.writeCount(); got != w {
		t.Fatalf("unchanged state wrote %d times", got-w)
	}
}

func TestCatalogDeletionRepairedByFullSync(t *testing.T) {
	st, cat := NewState(), newMemCatalog()
	s := newSyncer(t, st, cat)
	_ = st.AddService(webService(), []*structs.HealthCheck{webCheck()})
	mustSync(t, s.SyncFull)
	cat.edit(func(m *memCatalog) { m.deregister(&structs.DeregisterRequest{Node: node, ServiceID: "web-1"}) })
	if cat.service(node, "web-1") != nil {
		t.Fatal("setup: service still in catalog")
	}
	mustSync(t, s.SyncFull)
	if cat.service(node, "web-1") == nil || cat.check(node, "web-ttl") == nil {
		t.Fatal("one full sync did not restore the service and its check")
	}
	// A changed field is repaired too.
	cat.edit(func(m *memCatalog) { m.services[node]["web-1"].Port = 1 })
	mustSync(t, s.SyncFull)
	if p := cat.service(node, "web-1").Port; p != 8080 {
		t.Fatalf("port %d not repaired", p)
	}
}

func TestCatalogOnlyRecordsRemoved(t *testing.T) {
	st, cat := NewState(), newMemCatalog()
	s := newSyncer(t, st, cat)
	_ = st.AddService(webService(), nil)
	mustSync(t, s.SyncFull)
	cat.edit(func(m *memCatalog) {
		_ = m.register(&structs.RegisterRequest{Node: node, SkipNodeUpdate: true,
			Service: &structs.NodeService{ID: "stray", Service: "stray"},
			Checks: []*structs.HealthCheck{
				{CheckID: "stray-check", ServiceID: "stray", Status: structs.HealthPassing},
				{CheckID: "node-stray", Status: structs.HealthPassing},
				{CheckID: structs.SerfCheckID, Name: structs.SerfCheckName, Status: structs.HealthPassing},
			}})
		_ = m.register(&structs.RegisterRequest{Node: node, SkipNodeUpdate: true,
			Service: &structs.NodeService{ID: structs.ConsulServiceID, Service: structs.ConsulServiceName, Port: 8300}})
	})
	mustSync(t, s.SyncFull)
	for _, id := range []string{"stray-check", "node-stray"} {
		if cat.check(node, id) != nil {
			t.Errorf("catalog-only check %s survived", id)
		}
	}
	if cat.service(node, "stray") != nil {
		t.Error("catalog-only service survived")
	}
	if cat.check(node, structs.SerfCheckID) == nil || cat.service(node, structs.ConsulServiceID) == nil {
		t.Error("leader-owned serfHealth / consul records were removed")
	}
	if cat.service(node, "web-1") == nil {
		t.Error("local service removed")
	}
	if len(st.Services()) != 1 || len(st.Checks()) != 0 {
		t.Errorf("placeholders leaked into State: %v %v", st.Services(), st.Checks())
	}
	w := cat.writeCount()
	mustSync(t, s.SyncFull)
	if cat.writeCount() != w {
		t.Error("writes after repair")
	}
}

func TestLocalRemovalDeregisters(t *testing.T) {
	st, cat := NewState(), newMemCatalog()
	s := newSyncer(t, st, cat)
	_ = st.AddService(webService(), []*structs.HealthCheck{webCheck()})
	_ = st.AddCheck(&structs.HealthCheck{CheckID: "disk", Status: structs.HealthPassing})
	mustSync(t, s.SyncFull)
	if err := st.RemoveCheck("disk"); err != nil {
		t.Fatal(err)
	}
	if err := st.RemoveService("web-1"); err != nil {
		t.Fatal(err)
	}
	if err := st.RemoveService("web-1"); !errors.Is(err, ErrUnknownService) {
		t.Fatalf("second remove: %v", err)
	}
	if st.ServiceExists("web-1") || len(st.Checks()) != 0 {
		t.Fatal("removed records still visible")
	}
	mustSync(t, s.SyncChanges)
	if cat.service(node, "web-1") != nil || cat.check(node, "web-ttl") != nil || cat.check(node, "disk") != nil {
		t.Fatal("catalog still has removed records")
	}
	// Exactly: 1 register + service deregister + check deregister.
	if w := cat.writeCount(); w != 4 {
		t.Fatalf("writes = %d, want 4 (2 registers, 2 deregisters)", w)
	}
}

func TestTTLCheckMovesCatalogStatus(t *testing.T) {
	st, cat := NewState(), newMemCatalog()
	s := newSyncer(t, st, cat)
	_ = st.AddService(webService(), []*structs.HealthCheck{webCheck()})
	ttl := checks.NewTTL("web-ttl", time.Minute, st, zaptest.NewLogger(t))
	ttl.Start()
	defer ttl.Stop()
	mustSync(t, s.SyncFull)

	ttl.Pass("ok")
	mustSync(t, s.SyncChanges)
	if c := cat.check(node, "web-ttl"); c.Status != structs.HealthPassing || c.Output != "ok" {
		t.Fatalf("after pass: %+v", c)
	}
	ttl.Fail("down")
	mustSync(t, s.SyncChanges)
	if c := cat.check(node, "web-ttl"); c.Status != structs.HealthCritical || c.Output != "down" {
		t.Fatalf("after fail: %+v", c)
	}
}

func TestMaintenanceMode(t *testing.T) {
	st, cat := NewState(), newMemCatalog()
	s := newSyncer(t, st, cat)
	_ = st.AddService(webService(), nil)
	if err := st.EnableServiceMaintenance("nope", ""); !errors.Is(err, ErrUnknownService) {
		t.Fatalf("unknown service: %v", err)
	}
	if err := st.EnableServiceMaintenance("web-1", ""); err != nil {
		t.Fatal(err)
	}
	st.EnableNodeMaintenance("kernel upgrade")
	mustSync(t, s.SyncFull)
	c := cat.check(node, "_service_maintenance:web-1")
	if c == nil || c.Status != structs.HealthCritical || c.Name != ServiceMaintCheckName || c.Notes != DefaultServiceMaintReason || c.ServiceID != "web-1" {
		t.Fatalf("service maintenance check %+v", c)
	}
	n := cat.check(node, NodeMaintCheckID)
	if n == nil || n.Status != structs.HealthCritical || n.Name != NodeMaintCheckName || n.Notes != "kernel upgrade" || n.ServiceID != "" {
		t.Fatalf("node maintenance check %+v", n)
	}
	if !st.InMaintenance("web-1") || !st.InMaintenance("") {
		t.Fatal("InMaintenance false")
	}
	if err := st.DisableServiceMaintenance("web-1"); err != nil {
		t.Fatal(err)
	}
	st.DisableNodeMaintenance()
	mustSync(t, s.SyncChanges)
	if cat.check(node, "_service_maintenance:web-1") != nil || cat.check(node, NodeMaintCheckID) != nil {
		t.Fatal("maintenance checks still in catalog")
	}
	if cat.service(node, "web-1") == nil {
		t.Fatal("service went with its maintenance check")
	}
}

// TestReapCriticalService runs in a synctest bubble so the reaper's
// ticks and the checks' critical-since times share one exact clock.
func TestReapCriticalService(t *testing.T) {
	synctest.Test(t, testReapCriticalService)
}

func testReapCriticalService(t *testing.T) {
	st, cat := NewState(), newMemCatalog()
	s := newSyncer(t, st, cat)
	_ = st.AddService(webService(), []*structs.HealthCheck{webCheck()})
	_ = st.AddService(&structs.NodeService{ID: "db", Service: "db"}, []*structs.HealthCheck{{CheckID: "db-check", Status: structs.HealthPassing}})
	for _, id := range []string{"web-ttl", "db-check"} {
		if err := st.SetDeregisterCriticalServiceAfter(id, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetDeregisterCriticalServiceAfter("nope", time.Second); !errors.Is(err, ErrUnknownCheck) {
		t.Fatalf("unknown check: %v", err)
	}
	mustSync(t, s.SyncFull)

	// Not yet: critical for less than the limit.
	if got := st.ReapCriticalServices(time.Now()); len(got) != 0 {
		t.Fatalf("reaped too early: %v", got)
	}
	// A check that recovers resets its clock.
	st.UpdateCheck("db-check", structs.HealthCritical, "x")
	st.UpdateCheck("db-check", structs.HealthPassing, "y")

	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu     sync.Mutex
		reaped []string
		wg     sync.WaitGroup
	)
	wg.Go(func() {
		st.RunReaper(ctx, 20*time.Millisecond, func(id string) {
			mu.Lock()
			reaped = append(reaped, id)
			mu.Unlock()
		})
	})
	t.Cleanup(func() { cancel(); wg.Wait() }) // also when a check below fails
	// Critical for exactly the limit: kept; reaped at the next tick.
	testutil.Advance(100 * time.Millisecond)
	if !st.ServiceExists("web-1") {
		t.Fatal("reaped when critical for exactly the limit, not longer")
	}
	testutil.Advance(20 * time.Millisecond)
	if st.ServiceExists("web-1") {
		t.Fatal("not reaped at the first tick after the limit")
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(reaped) != 1 || reaped[0] != "web-1" {
		t.Fatalf("reaped %v", reaped)
	}
	if !st.ServiceExists("db") || st.Check("web-ttl") != nil {
		t.Fatal("wrong records reaped")
	}
	mustSync(t, s.SyncChanges)
	if cat.service(node, "web-1") != nil || cat.check(node, "web-ttl") != nil || cat.service(node, "db") == nil {
		t.Fatal("catalog does not reflect the reap")
	}
}

func TestEnableTagOverrideKeepsCatalogTags(t *testing.T) {
	st, cat := NewState(), newMemCatalog()
	s := newSyncer(t, st, cat)
	svc := webService()
	svc.EnableTagOverride = true
	_ = st.AddService(svc, nil)
	mustSync(t, s.SyncFull)
	cat.edit(func(m *memCatalog) { m.services[node]["web-1"].Tags = []string{"canary"} })
	w := cat.writeCount()
	mustSync(t, s.SyncFull)
	if got := st.Service("web-1").Tags; len(got) != 1 || got[0] != "canary" || cat.writeCount() != w {
		t.Fatalf("tags %v, writes %d", got, cat.writeCount()-w)
	}
}

func TestNodeFieldsRepaired(t *testing.T) {
	st, cat := NewState(), newMemCatalog()
	s := newSyncer(t, st, cat)
	mustSync(t, s.SyncFull) // no services: the node alone is registered
	cat.edit(func(m *memCatalog) { m.nodes[node].Address = "192.0.2.9" })
	mustSync(t, s.SyncFull)
	cat.edit(func(m *memCatalog) {
		if a := m.nodes[node].Address; a != "10.0.0.1" {
			t.Fatalf("node address %q not repaired", a)
		}
	})
}

func TestStateValidationAndCopies(t *testing.T) {
	st := NewState()
	if err := st.AddService(&structs.NodeService{}, nil); err == nil {
		t.Fatal("nameless service accepted")
	}
	if err := st.AddCheck(&structs.HealthCheck{CheckID: "c", ServiceID: "missing"}); !errors.Is(err, ErrUnknownService) {
		t.Fatalf("check for unknown service: %v", err)
	}
	if err := st.AddService(webService(), []*structs.HealthCheck{{CheckID: "c", ServiceID: "other"}}); err == nil {
		t.Fatal("check of another service accepted")
	}
	_ = st.AddService(&structs.NodeService{Service: "redis"}, nil)
	if !st.ServiceExists("redis") {
		t.Fatal("ID did not default to the name")
	}
	st.Services()["redis"].Port = 99
	if st.Service("redis").Port == 99 {
		t.Fatal("Services returned shared records")
	}
	<-st.Notify() // changes were signalled
}

func TestAEScale(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{{1, time.Minute}, {128, time.Minute}, {129, 2 * time.Minute}, {256, 2 * time.Minute}, {257, 3 * time.Minute}, {4096, 6 * time.Minute}} {
		if got := aeScale(time.Minute, tc.n); got != tc.want {
			t.Errorf("aeScale(1m, %d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

// State is what the check runners report to.
var _ checks.Notifier = (*State)(nil)
