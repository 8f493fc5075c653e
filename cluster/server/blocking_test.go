package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

// blockingQueries reads cairn_rpc_blocking_queries_total{shared} from reg.
func blockingQueries(t *testing.T, reg *prometheus.Registry) (started, joined float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "cairn_rpc_blocking_queries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "shared" && l.GetValue() == "true" {
					joined = m.GetCounter().GetValue()
				} else if l.GetName() == "shared" {
					started = m.GetCounter().GetValue()
				}
			}
		}
	}
	return started, joined
}

func setCheck(ctx context.Context, s *Server, status string) (uint64, error) {
	var out structs.WriteResponse
	err := s.RPC(ctx, structs.MethodCatalogRegister, &structs.RegisterRequest{
		Node: "node-a", Address: "10.0.0.1",
		Service: &structs.NodeService{Service: "a", Port: 80},
		Checks:  []*structs.HealthCheck{{CheckID: "a-alive", Status: status, ServiceID: "a"}},
	}, &out)
	return out.Index, err
}

// TestSharedBlockingQueries: N identical blocking reads, in-process and
// over the wire, are served by one flight (one Block, one watch) and all
// get the same answer when the service changes.
func TestSharedBlockingQueries(t *testing.T) {
	const local, remote = 16, 4
	reg := prometheus.NewRegistry()
	s := testServer(t, "dev", 1, "", nil, func(c *Config) { c.Registry = reg })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := setCheck(ctx, s, structs.HealthPassing); err != nil {
		t.Fatal(err)
	}
	var first structs.IndexedCheckServiceNodes
	if err := s.RPC(ctx, structs.MethodHealthServiceNodes, &structs.ServiceSpecificRequest{ServiceName: "a"}, &first); err != nil {
		t.Fatal(err)
	}
	startedBefore, joinedBefore := blockingQueries(t, reg)

	args := func() *structs.ServiceSpecificRequest {
		return &structs.ServiceSpecificRequest{ServiceName: "a", QueryOptions: structs.QueryOptions{MinQueryIndex: first.Index, MaxQueryTime: time.Minute}}
	}
	sess, err := rpc.Dial(ctx, s.ln.Addr().String(), rpc.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	type answer struct {
		out structs.IndexedCheckServiceNodes
		err error
	}
	answers := make(chan answer, local+remote)
	var wg sync.WaitGroup
	for i := range local + remote {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var a answer
			if i < local {
				a.err = s.RPC(ctx, structs.MethodHealthServiceNodes, args(), &a.out)
			} else {
				a.err = sess.Call(ctx, structs.MethodHealthServiceNodes, args(), &a.out)
			}
			answers <- a
		}()
	}
	testutil.Eventually(t, 10*time.Second, "every blocking read waiting on one flight", func() error {
		started, joined := blockingQueries(t, reg)
		if started-startedBefore != 1 || joined-joinedBefore != local+remote-1 {
			return fmt.Errorf("flights started %v, joined %v", started-startedBefore, joined-joinedBefore)
		}
		return nil
	})
	idx, err := setCheck(ctx, s, structs.HealthCritical)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(answers)
	for a := range answers {
		if a.err != nil {
			t.Fatal(a.err)
		}
		if a.out.Index != idx || len(a.out.Nodes) != 1 || a.out.Nodes[0].Checks[0].Status != structs.HealthCritical {
			t.Fatalf("answer index %d (want %d): %+v", a.out.Index, idx, a.out.Nodes)
		}
	}
	if started, _ := blockingQueries(t, reg); started-startedBefore != 1 {
		t.Fatalf("%v flights for identical blocking reads, want 1", started-startedBefore)
	}
}

// TestSharedBlockingQueryOutlivesItsFirstCaller: the caller that started a
// flight may leave; the others still get the answer.
func TestSharedBlockingQueryOutlivesItsFirstCaller(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := testServer(t, "dev", 1, "", nil, func(c *Config) { c.Registry = reg })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	idx0, err := setCheck(ctx, s, structs.HealthPassing)
	if err != nil {
		t.Fatal(err)
	}
	var first structs.IndexedCheckServiceNodes
	if err := s.RPC(ctx, structs.MethodHealthServiceNodes, &structs.ServiceSpecificRequest{ServiceName: "a"}, &first); err != nil || first.Index != idx0 {
		t.Fatalf("index %d, want %d: %v", first.Index, idx0, err)
	}
	startedBefore, joinedBefore := blockingQueries(t, reg)
	args := &structs.ServiceSpecificRequest{ServiceName: "a", QueryOptions: structs.QueryOptions{MinQueryIndex: first.Index, MaxQueryTime: time.Minute}}
	leaving, leave := context.WithCancel(ctx)
	firstDone := make(chan error, 1)
	go func() {
		var out structs.IndexedCheckServiceNodes
		firstDone <- s.RPC(leaving, structs.MethodHealthServiceNodes, args, &out)
	}()
	testutil.Eventually(t, 10*time.Second, "the first caller's flight", func() error {
		if started, _ := blockingQueries(t, reg); started-startedBefore != 1 {
			return fmt.Errorf("%v flights", started-startedBefore)
		}
		return nil
	})
	secondDone := make(chan structs.IndexedCheckServiceNodes, 1)
	go func() {
		a := *args
		var out structs.IndexedCheckServiceNodes
		if err := s.RPC(ctx, structs.MethodHealthServiceNodes, &a, &out); err != nil {
			t.Error(err)
		}
		secondDone <- out
	}()
	testutil.Eventually(t, 10*time.Second, "the second caller joining", func() error {
		if _, joined := blockingQueries(t, reg); joined-joinedBefore != 1 {
			return fmt.Errorf("%v joined", joined-joinedBefore)
		}
		return nil
	})
	leave()
	if err := <-firstDone; err == nil {
		t.Fatal("the cancelled caller got an answer")
	}
	idx, err := setCheck(ctx, s, structs.HealthWarning)
	if err != nil {
		t.Fatal(err)
	}
	if out := <-secondDone; out.Index != idx {
		t.Fatalf("second caller: index %d, want %d", out.Index, idx)
	}
}

// TestCatalogIndexProbeWakesOnAnyChange: client agents' index watch (until
// they subscribe per key) asks for catalogIndexProbe and must wake on a
// change to any service, while a read of another service does not move.
func TestCatalogIndexProbeWakesOnAnyChange(t *testing.T) {
	s := testServer(t, "dev", 1, "", nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := setCheck(ctx, s, structs.HealthPassing); err != nil {
		t.Fatal(err)
	}
	var probe, b structs.IndexedCheckServiceNodes
	if err := s.RPC(ctx, structs.MethodHealthServiceNodes, &structs.ServiceSpecificRequest{ServiceName: catalogIndexProbe}, &probe); err != nil {
		t.Fatal(err)
	}
	if err := s.RPC(ctx, structs.MethodHealthServiceNodes, &structs.ServiceSpecificRequest{ServiceName: "b"}, &b); err != nil {
		t.Fatal(err)
	}
	done := make(chan structs.IndexedCheckServiceNodes, 1)
	go func() {
		var out structs.IndexedCheckServiceNodes
		if err := s.RPC(ctx, structs.MethodHealthServiceNodes, &structs.ServiceSpecificRequest{ServiceName: catalogIndexProbe,
			QueryOptions: structs.QueryOptions{MinQueryIndex: probe.Index, MaxQueryTime: time.Minute}}, &out); err != nil {
			t.Error(err)
		}
		done <- out
	}()
	idx, err := setCheck(ctx, s, structs.HealthCritical)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case out := <-done:
		if out.Index < idx {
			t.Fatalf("probe returned index %d, want >= %d", out.Index, idx)
		}
	case <-ctx.Done():
		t.Fatal("a change to service a did not wake the catalog index probe")
	}
	var b2 structs.IndexedCheckServiceNodes
	if err := s.RPC(ctx, structs.MethodHealthServiceNodes, &structs.ServiceSpecificRequest{ServiceName: "b"}, &b2); err != nil {
		t.Fatal(err)
	}
	if b2.Index != b.Index {
		t.Fatalf("absent service b's index moved from %d to %d on a change to a", b.Index, b2.Index)
	}
}
