package state

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cairnd/cairn/cluster/structs"
)

func mustRegister(t testing.TB, s *Store, idx uint64, req *structs.RegisterRequest) {
	t.Helper()
	if err := s.EnsureRegistration(idx, req); err != nil {
		t.Fatalf("register at %d: %v", idx, err)
	}
}

func webReq(node, addr string, port int, status string) *structs.RegisterRequest {
	return &structs.RegisterRequest{
		Node:    node,
		Address: addr,
		Service: &structs.NodeService{Service: "web", Tags: []string{"Primary"}, Port: port},
		Checks: []*structs.HealthCheck{
			{CheckID: "serfHealth", Status: structs.HealthPassing},
			{CheckID: "web-http", Status: status, ServiceID: "web"},
		},
	}
}

func TestEmptyStoreIndexesAreOne(t *testing.T) {
	s := New()
	for name, idx := range map[string]uint64{
		"nodes":    first(s.Nodes()),
		"services": first(s.Services()),
		"csn":      first(s.CheckServiceNodes("web", "", false)),
		"kvget":    first(s.KVSGet("x")),
		"kvlist":   first(s.KVSList("")),
		"checks":   first(s.ChecksInState(structs.HealthAny)),
	} {
		if idx != 1 {
			t.Errorf("%s: index %d on empty store, want 1", name, idx)
		}
	}
	if s.Index() != 0 {
		t.Errorf("Index() = %d, want 0", s.Index())
	}
}

func first[T any](idx uint64, _ T) uint64 { return idx }

func TestEnsureRegistrationErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  *structs.RegisterRequest
		want error
	}{
		{"nil", nil, structs.ErrMissingNode},
		{"no node", &structs.RegisterRequest{Address: "1.1.1.1"}, structs.ErrMissingNode},
		{"no address", &structs.RegisterRequest{Node: "n"}, structs.ErrMissingAddress},
		{"skip update of a new node still needs an address", &structs.RegisterRequest{Node: "n", SkipNodeUpdate: true}, structs.ErrMissingAddress},
		{"check without id", &structs.RegisterRequest{Node: "n", Address: "a", Check: &structs.HealthCheck{}}, ErrMissingCheckID},
		{"check on unknown service", &structs.RegisterRequest{Node: "n", Address: "a", Checks: []*structs.HealthCheck{{CheckID: "c", ServiceID: "x"}}}, ErrUnknownService},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			err := s.EnsureRegistration(5, tc.req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if s.Index() != 0 || len(s.nodes) != 0 {
				t.Fatalf("failed registration changed the store: index %d, %d nodes", s.Index(), len(s.nodes))
			}
		})
	}
}

func TestEnsureRegistrationDefaultsAndDenormalisation(t *testing.T) {
	s := New()
	mustRegister(t, s, 3, &structs.RegisterRequest{
		Node: "n1", Address: "10.0.0.1",
		Service: &structs.NodeService{Service: "web", Tags: []string{"a"}},
		Check:   &structs.HealthCheck{Name: "alive", ServiceID: "web", Node: "wrong"},
	})
	_, ns := s.NodeServices("n1")
	if ns == nil || ns.Services["web"] == nil || ns.Services["web"].ID != "web" {
		t.Fatalf("service ID did not default to the name: %+v", ns)
	}
	_, checks := s.NodeChecks("n1")
	if len(checks) != 1 {
		t.Fatalf("got %d checks", len(checks))
	}
	c := checks[0]
	if c.CheckID != "alive" || c.Node != "n1" || c.Status != structs.HealthCritical || c.ServiceName != "web" || !slices.Equal(c.ServiceTags, []string{"a"}) {
		t.Fatalf("check defaults wrong: %+v", c)
	}
	if c.CreateIndex != 3 || c.ModifyIndex != 3 {
		t.Fatalf("check indexes %d/%d", c.CreateIndex, c.ModifyIndex)
	}
}

func TestIndexesOnUpdate(t *testing.T) {
	s := New()
	mustRegister(t, s, 10, webReq("n1", "10.0.0.1", 80, structs.HealthPassing))
	for _, tb := range []Table{TableNodes, TableServices, TableChecks} {
		if got := s.TableIndex(tb); got != 10 {
			t.Fatalf("%s index %d, want 10", tb, got)
		}
	}

	// The same registration again (anti-entropy): nothing moves, no watcher wakes.
	ch := s.Watch(TableNodes, TableServices, TableChecks)
	mustRegister(t, s, 11, webReq("n1", "10.0.0.1", 80, structs.HealthPassing))
	if s.Index() != 10 {
		t.Fatalf("unchanged re-registration moved the index to %d", s.Index())
	}
	select {
	case <-ch:
		t.Fatal("unchanged re-registration woke a watcher")
	default:
	}

	// Only the check changes: only the checks table and the check move.
	mustRegister(t, s, 12, webReq("n1", "10.0.0.1", 80, structs.HealthWarning))
	if s.TableIndex(TableChecks) != 12 || s.TableIndex(TableServices) != 10 || s.TableIndex(TableNodes) != 10 {
		t.Fatalf("indexes after check change: %d/%d/%d", s.TableIndex(TableNodes), s.TableIndex(TableServices), s.TableIndex(TableChecks))
	}
	select {
	case <-ch:
	default:
		t.Fatal("check change did not wake the watcher")
	}
	_, checks := s.NodeChecks("n1")
	for _, c := range checks {
		want := uint64(10)
		if c.CheckID == "web-http" {
			want = 12
		}
		if c.CreateIndex != 10 || c.ModifyIndex != want {
			t.Errorf("check %s indexes %d/%d, want 10/%d", c.CheckID, c.CreateIndex, c.ModifyIndex, want)
		}
	}

	// Service and node changes keep CreateIndex.
	mustRegister(t, s, 13, webReq("n1", "10.0.0.9", 81, structs.HealthWarning))
	_, n := s.Node("n1")
	if n.CreateIndex != 10 || n.ModifyIndex != 13 || n.Address != "10.0.0.9" {
		t.Fatalf("node %+v", n)
	}
	_, sns := s.ServiceNodes("web", "")
	if len(sns) != 1 || sns[0].CreateIndex != 10 || sns[0].ModifyIndex != 13 || sns[0].Address != "10.0.0.9" || sns[0].ServicePort != 81 {
		t.Fatalf("service node %+v", sns[0])
	}
	if sns[0].ServiceWeights != (structs.Weights{Passing: 1, Warning: 1}) {
		t.Fatalf("default weights %+v", sns[0].ServiceWeights)
	}
}

func TestReads(t *testing.T) {
	s := New()
	mustRegister(t, s, 1, webReq("c", "10.0.0.3", 80, structs.HealthPassing))
	mustRegister(t, s, 2, webReq("a", "10.0.0.1", 80, structs.HealthWarning))
	mustRegister(t, s, 3, webReq("b", "10.0.0.2", 80, structs.HealthMaint))
	mustRegister(t, s, 4, &structs.RegisterRequest{Node: "a", Address: "10.0.0.1",
		Service: &structs.NodeService{ID: "db1", Service: "db", Tags: []string{"x", "y"}},
		Check:   &structs.HealthCheck{CheckID: "db-ok", ServiceID: "db1", Status: structs.HealthPassing}})

	_, nodes := s.Nodes()
	if got := names(nodes, func(n *structs.Node) string { return n.Node }); got != "a,b,c" {
		t.Errorf("Nodes order %s", got)
	}
	if _, n := s.Node("zz"); n != nil {
		t.Errorf("unknown node returned %+v", n)
	}
	idx, svcs := s.Services()
	if idx != 4 || len(svcs) != 2 || !slices.Equal(svcs["web"], []string{"Primary"}) || !slices.Equal(svcs["db"], []string{"x", "y"}) {
		t.Errorf("Services %d %v", idx, svcs)
	}
	if _, sns := s.ServiceNodes("web", "PRIMARY"); len(sns) != 3 {
		t.Errorf("case-insensitive tag match found %d", len(sns))
	}
	if _, sns := s.ServiceNodes("web", "nope"); len(sns) != 0 {
		t.Errorf("unknown tag matched %d", len(sns))
	}

	for _, tc := range []struct {
		passing bool
		want    string
	}{{false, "a,b,c"}, {true, "c"}} {
		_, csn := s.CheckServiceNodes("web", "", tc.passing)
		if got := names(csn, func(c structs.CheckServiceNode) string { return c.Node.Node }); got != tc.want {
			t.Errorf("passingOnly=%v: %s, want %s", tc.passing, got, tc.want)
		}
	}
	_, csn := s.CheckServiceNodes("db", "", false)
	if len(csn) != 1 || names(csn[0].Checks, func(c *structs.HealthCheck) string { return c.CheckID }) != "db-ok,serfHealth" {
		t.Errorf("db checks: %+v", csn)
	}

	_, ns := s.NodeServices("a")
	if len(ns.Services) != 2 || ns.Services["db1"].Service != "db" {
		t.Errorf("NodeServices %+v", ns.Services)
	}
	if _, ns := s.NodeServices("zz"); ns != nil {
		t.Errorf("NodeServices of unknown node %+v", ns)
	}
	_, checks := s.NodeChecks("a")
	if got := names(checks, func(c *structs.HealthCheck) string { return c.CheckID }); got != "db-ok,serfHealth,web-http" {
		t.Errorf("NodeChecks %s", got)
	}
	_, checks = s.ServiceChecks("web")
	if got := names(checks, func(c *structs.HealthCheck) string { return c.Node + "/" + c.Status }); got != "a/warning,b/maintenance,c/passing" {
		t.Errorf("ServiceChecks %s", got)
	}
	_, checks = s.ChecksInState(structs.HealthPassing)
	if got := names(checks, func(c *structs.HealthCheck) string { return c.Node + "/" + c.CheckID }); got != "a/db-ok,a/serfHealth,b/serfHealth,c/serfHealth,c/web-http" {
		t.Errorf("ChecksInState passing %s", got)
	}
	if _, checks = s.ChecksInState(structs.HealthAny); len(checks) != 7 {
		t.Errorf("ChecksInState any: %d", len(checks))
	}
}

func names[T any](xs []T, f func(T) string) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return strings.Join(out, ",")
}

func TestDeregister(t *testing.T) {
	s := New()
	mustRegister(t, s, 1, webReq("a", "10.0.0.1", 80, structs.HealthPassing))
	mustRegister(t, s, 2, webReq("b", "10.0.0.2", 80, structs.HealthPassing))

	if err := s.Deregister(3, &structs.DeregisterRequest{}); !errors.Is(err, structs.ErrMissingNode) {
		t.Fatalf("err %v", err)
	}
	// Check only: the instance's combined checks drop it.
	if err := s.Deregister(4, &structs.DeregisterRequest{Node: "a", CheckID: "serfHealth"}); err != nil {
		t.Fatal(err)
	}
	_, csn := s.CheckServiceNodes("web", "", false)
	if len(csn[0].Checks) != 1 || csn[0].Checks[0].CheckID != "web-http" || s.TableIndex(TableChecks) != 4 || s.TableIndex(TableServices) != 2 {
		t.Fatalf("after check deregister: %+v, checks index %d", csn[0].Checks, s.TableIndex(TableChecks))
	}
	// Service: its checks go, the node stays.
	if err := s.Deregister(5, &structs.DeregisterRequest{Node: "a", ServiceID: "web"}); err != nil {
		t.Fatal(err)
	}
	if _, checks := s.NodeChecks("a"); len(checks) != 0 {
		t.Fatalf("service checks left: %+v", checks)
	}
	if _, n := s.Node("a"); n == nil || s.TableIndex(TableServices) != 5 || s.TableIndex(TableNodes) != 2 {
		t.Fatal("service deregistration removed the node or missed the services index")
	}
	// Node: everything on it goes.
	if err := s.Deregister(6, &structs.DeregisterRequest{Node: "b"}); err != nil {
		t.Fatal(err)
	}
	if _, sns := s.ServiceNodes("web", ""); len(sns) != 0 {
		t.Fatalf("instances left: %d", len(sns))
	}
	if _, svcs := s.Services(); len(svcs) != 0 {
		t.Fatalf("services left: %v", svcs)
	}
	for _, tb := range []Table{TableNodes, TableServices, TableChecks} {
		if s.TableIndex(tb) != 6 {
			t.Errorf("%s index %d, want 6", tb, s.TableIndex(tb))
		}
	}
	// Absent things: no-op, no index move.
	if err := s.Deregister(7, &structs.DeregisterRequest{Node: "b"}); err != nil || s.Index() != 6 {
		t.Fatalf("no-op deregister: %v, index %d", err, s.Index())
	}
}

func TestServiceRename(t *testing.T) {
	s := New()
	mustRegister(t, s, 1, &structs.RegisterRequest{Node: "a", Address: "1", Service: &structs.NodeService{ID: "s1", Service: "old"}})
	mustRegister(t, s, 2, &structs.RegisterRequest{Node: "a", Address: "1", Service: &structs.NodeService{ID: "s1", Service: "new"}})
	if _, sns := s.ServiceNodes("old", ""); len(sns) != 0 {
		t.Fatalf("old name still lists %d", len(sns))
	}
	if _, sns := s.ServiceNodes("new", ""); len(sns) != 1 || sns[0].CreateIndex != 1 {
		t.Fatalf("new name: %+v", sns)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := New()
	mustRegister(t, s, 1, webReq("a", "10.0.0.1", 80, structs.HealthPassing))
	mustRegister(t, s, 2, &structs.RegisterRequest{Node: "b", Address: "10.0.0.2", ID: "id-b",
		TaggedAddresses: map[string]string{"wan": "1.2.3.4"}, NodeMeta: map[string]string{"rack": "r1"},
		Service: &structs.NodeService{ID: "db1", Service: "db", Weights: &structs.Weights{Passing: 5, Warning: 2}, Meta: map[string]string{"v": "1"}}})
	if err := s.KVSSet(3, &structs.DirEntry{Key: "k", Value: []byte("v"), Flags: 42}); err != nil {
		t.Fatal(err)
	}
	// Lock state only lock operations set; plant it to prove it survives.
	e := *s.kvs["k"]
	e.Session, e.LockIndex = "sess-1", 7
	s.kvs["k"] = &e
	_ = s.KVSSet(3, &structs.DirEntry{Key: "gone"})
	if err := s.KVSDelete(4, "gone"); err != nil { // leaves a tombstone
		t.Fatal(err)
	}
	mustRegister(t, s, 5, webReq("a", "10.0.0.1", 80, structs.HealthCritical))

	snap := s.Snapshot()
	want := dump(s)
	// Writes after the snapshot do not leak into it.
	mustRegister(t, s, 6, webReq("c", "10.0.0.3", 80, structs.HealthPassing))

	var buf bytes.Buffer
	if err := snap.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := Restore(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got := dump(r); got != want {
		t.Fatalf("restored state differs\n got:\n%s\nwant:\n%s", got, want)
	}
	_, sns := r.ServiceNodes("db", "")
	if len(sns) != 1 || sns[0].ServiceWeights.Passing != 5 || sns[0].TaggedAddresses["wan"] != "1.2.3.4" || sns[0].ID != "id-b" || sns[0].ServiceMeta["v"] != "1" {
		t.Fatalf("restored service node %+v", sns)
	}
	_, csn := r.CheckServiceNodes("web", "", true)
	if len(csn) != 0 {
		t.Fatalf("restored derived checks wrong: %+v", csn)
	}
	// Restoring twice from the same bytes is deterministic.
	var buf2 bytes.Buffer
	if err := r.Snapshot().Persist(&buf2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
		t.Fatal("persisting a restored store gave different bytes")
	}

	if _, err := Restore(bytes.NewReader(buf.Bytes()[:buf.Len()-1])); err == nil {
		t.Fatal("truncated snapshot restored without error")
	}
	if _, err := Restore(bytes.NewReader(nil)); err == nil {
		t.Fatal("empty snapshot restored without error")
	}
}

// TestConcurrentReadsAndWrites runs readers against a writer; under -race
// it proves that shared entries are never written after publication.
func TestConcurrentReadsAndWrites(t *testing.T) {
	s := New()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, csn := s.CheckServiceNodes("web", "", false)
				for _, c := range csn {
					_ = c.Node.Address + c.Service.Address
					for _, hc := range c.Checks {
						_ = hc.Status
					}
				}
				_, l := s.KVSList("")
				for _, e := range l {
					_ = e.Value
				}
				_, _ = s.Services()
				_ = s.Snapshot().Index()
			}
		}()
	}
	statuses := []string{structs.HealthPassing, structs.HealthWarning, structs.HealthCritical}
	for i := uint64(1); i <= 2000; i++ {
		node := fmt.Sprintf("n%d", i%7)
		mustRegister(t, s, i, webReq(node, fmt.Sprintf("10.0.0.%d", i%3), int(i%5), statuses[i%3]))
		if i%11 == 0 {
			_ = s.Deregister(i, &structs.DeregisterRequest{Node: node})
		}
		_ = s.KVSSet(i, &structs.DirEntry{Key: fmt.Sprintf("k%d", i%13), Value: []byte{byte(i)}})
	}
	close(stop)
	wg.Wait()
}

func BenchmarkCheckServiceNodes(b *testing.B) {
	s := New()
	for i := 0; i < 10; i++ {
		mustRegister(b, s, uint64(i+1), webReq(fmt.Sprintf("node-%02d", i), fmt.Sprintf("10.0.0.%d", i), 80, structs.HealthPassing))
	}
	b.ReportAllocs()
	for b.Loop() {
		_, csn := s.CheckServiceNodes("web", "", true)
		if len(csn) != 10 {
			b.Fatal(len(csn))
		}
	}
}

func BenchmarkEnsureRegistration(b *testing.B) {
	s := New()
	b.ReportAllocs()
	var i uint64
	for b.Loop() {
		i++
		status := structs.HealthPassing
		if i%2 == 0 {
			status = structs.HealthWarning
		}
		if err := s.EnsureRegistration(i, webReq(fmt.Sprintf("node-%d", i%1000), "10.0.0.1", 80, status)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKVSSetDelete writes and deletes keys three directories deep:
// the KV write path including the per-directory delete record.
func BenchmarkKVSSetDelete(b *testing.B) {
	s := New()
	for i := range 1000 {
		_ = s.KVSSet(uint64(i+1), &structs.DirEntry{Key: fmt.Sprintf("app/%d/keep", i)})
	}
	b.ReportAllocs()
	idx := uint64(1000)
	var i int
	for b.Loop() {
		i++
		idx++
		key := fmt.Sprintf("app/%d/svc/k", i%1000)
		if i%2 == 0 {
			_ = s.KVSDelete(idx, key)
		} else {
			_ = s.KVSSet(idx, &structs.DirEntry{Key: key, Value: []byte("v")})
		}
	}
}
