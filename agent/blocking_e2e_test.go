package agent_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// Bounds of the per-key blocking test (issue 14). A blocked query that is
// still blocked after quietWait counts as not woken: that bounded wait is
// the subject of the test. wakeWithin is the freshness promise.
const (
	quietWait  = 500 * time.Millisecond
	wakeWithin = 100 * time.Millisecond
)

type blockedAnswer struct {
	index  uint64
	status string // a's check status in the answer ("" for catalog reads)
	err    error
}

// TestBlockingQueriesWakeOnlyForTheirKey drives a real dev agent over HTTP
// with the official client: a blocking query on service a ignores service
// b being registered, changed and deregistered and a check changing on a
// node without a, and returns within wakeWithin of a change to a's check;
// the same for the catalog read. A blocking ?recurse on app/ ignores writes
// to other/ and wakes for one under app/.
func TestBlockingQueriesWakeOnlyForTheirKey(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real agent process")
	}
	_, c := devAgent(t, nil)
	reg := catalogRegistrar{c.Catalog()}
	reg.register(t, "node-a", "10.0.0.1", "a", 80, "a-alive", api.HealthPassing)
	reg.register(t, "node-x", "10.0.0.9", "", 0, "disk", api.HealthPassing)
	noise := []struct {
		what string
		do   func(t *testing.T)
	}{
		{"service b registered", func(t *testing.T) { reg.register(t, "node-b", "10.0.0.2", "b", 80, "b-alive", api.HealthPassing) }},
		{"service b changed", func(t *testing.T) { reg.register(t, "node-b", "10.0.0.2", "b", 81, "b-alive", api.HealthWarning) }},
		{"service b deregistered", func(t *testing.T) {
			if _, err := reg.cat.Deregister(&api.CatalogDeregistration{Node: "node-b", ServiceID: "b"}, nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"check on a node without a changed", func(t *testing.T) { reg.register(t, "node-x", "10.0.0.9", "", 0, "disk", api.HealthCritical) }},
	}

	status := api.HealthPassing
	for _, tc := range serviceAQueries(c) {
		t.Run(tc.name, func(t *testing.T) {
			first := tc.query(nil)
			if first.err != nil {
				t.Fatal(first.err)
			}
			res := make(chan blockedAnswer, 1)
			go func() { res <- tc.query(&api.QueryOptions{WaitIndex: first.index, WaitTime: time.Minute}) }()
			for _, n := range noise {
				n.do(t)
				select {
				case got := <-res:
					t.Fatalf("woke on %q: index %d -> %d (err %v)", n.what, first.index, got.index, got.err)
				case <-time.After(quietWait):
				}
			}
			// Now a's own check changes.
			if status == api.HealthPassing {
				status = api.HealthCritical
			} else {
				status = api.HealthPassing
			}
			reg.register(t, "node-a", "10.0.0.1", "a", 80, "a-alive", status)
			acked := time.Now()
			select {
			case got := <-res:
				if late := time.Since(acked); late > wakeWithin {
					t.Errorf("returned %v after the write was acknowledged, want within %v", late, wakeWithin)
				}
				if got.err != nil || got.index <= first.index {
					t.Fatalf("after a's check changed: index %d (was %d), err %v", got.index, first.index, got.err)
				}
				if got.status != "" && got.status != status {
					t.Fatalf("a-alive is %q in the answer, want %q", got.status, status)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a change to a's check did not wake the blocking query")
			}
		})
	}

	t.Run("/v1/kv/app/?recurse", func(t *testing.T) { testBlockingKVPrefix(t, c.KV()) })
}

// catalogRegistrar registers external nodes, services and checks.
type catalogRegistrar struct{ cat *api.Catalog }

// register puts node at addr with one check checkID in status, on service
// svc (port) unless svc is "".
func (r catalogRegistrar) register(t *testing.T, node, addr, svc string, port int, checkID, status string) {
	t.Helper()
	reg := &api.CatalogRegistration{Node: node, Address: addr}
	chk := &api.HealthCheck{Node: node, CheckID: checkID, Name: checkID, Status: status}
	if svc != "" {
		reg.Service = &api.AgentService{ID: svc, Service: svc, Port: port}
		chk.ServiceID = svc
	}
	reg.Checks = api.HealthChecks{chk}
	if _, err := r.cat.Register(reg, nil); err != nil {
		t.Fatalf("register %s on %s: %v", svc, node, err)
	}
}

// serviceAQueries are the reads of service a that must block until a's
// own check changes: health (with a-alive's status) and catalog.
func serviceAQueries(c *api.Client) []struct {
	name  string
	query func(q *api.QueryOptions) blockedAnswer
} {
	return []struct {
		name  string
		query func(q *api.QueryOptions) blockedAnswer
	}{
		{"/v1/health/service/a", func(q *api.QueryOptions) blockedAnswer {
			entries, meta, err := c.Health().Service("a", "", false, q)
			if err != nil {
				return blockedAnswer{err: err}
			}
			if len(entries) != 1 {
				return blockedAnswer{err: errors.New("want one instance of a")}
			}
			for _, hc := range entries[0].Checks {
				if hc.CheckID == "a-alive" {
					return blockedAnswer{index: meta.LastIndex, status: hc.Status}
				}
			}
			return blockedAnswer{err: errors.New("a-alive missing")}
		}},
		{"/v1/catalog/service/a", func(q *api.QueryOptions) blockedAnswer {
			svcs, meta, err := c.Catalog().Service("a", "", q)
			if err != nil {
				return blockedAnswer{err: err}
			}
			if len(svcs) != 1 {
				return blockedAnswer{err: errors.New("want one instance of a")}
			}
			return blockedAnswer{index: meta.LastIndex}
		}},
	}
}

// testBlockingKVPrefix: a blocking ?recurse on app/ ignores writes to
// other/ and wakes for one under app/.
func testBlockingKVPrefix(t *testing.T, kv *api.KV) {
	for _, k := range []string{"app/x", "other/y"} {
		if _, err := kv.Put(&api.KVPair{Key: k, Value: []byte("1")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	_, meta, err := kv.List("app/", nil)
	if err != nil {
		t.Fatal(err)
	}
	type listed struct {
		pairs api.KVPairs
		index uint64
		err   error
	}
	res := make(chan listed, 1)
	go func() {
		pairs, m, err := kv.List("app/", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		if err != nil {
			res <- listed{err: err}
			return
		}
		res <- listed{pairs, m.LastIndex, nil}
	}()
	for _, w := range []struct {
		what string
		do   func() error
	}{
		{"put other/z", func() error { _, err := kv.Put(&api.KVPair{Key: "other/z", Value: []byte("2")}, nil); return err }},
		{"put other/y", func() error { _, err := kv.Put(&api.KVPair{Key: "other/y", Value: []byte("3")}, nil); return err }},
		{"delete other/y", func() error { _, err := kv.Delete("other/y", nil); return err }},
	} {
		if err := w.do(); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-res:
			t.Fatalf("app/ woke on %q: index %d -> %d (err %v)", w.what, meta.LastIndex, got.index, got.err)
		case <-time.After(quietWait):
		}
	}
	if _, err := kv.Put(&api.KVPair{Key: "app/z", Value: []byte("4")}, nil); err != nil {
		t.Fatal(err)
	}
	acked := time.Now()
	select {
	case got := <-res:
		if late := time.Since(acked); late > wakeWithin {
			t.Errorf("returned %v after the write was acknowledged, want within %v", late, wakeWithin)
		}
		if got.err != nil || got.index <= meta.LastIndex || len(got.pairs) != 2 {
			t.Fatalf("after put app/z: index %d (was %d), %d pairs, err %v", got.index, meta.LastIndex, len(got.pairs), got.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write under app/ did not wake the blocking list")
	}
}
