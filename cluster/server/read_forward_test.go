package server

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

// serviceIDs lists the instance IDs of service in st, in read order.
func serviceIDs(st *state.Store, service string) []string {
	_, sns := st.ServiceNodes(service, "")
	out := make([]string, 0, len(sns))
	for _, sn := range sns {
		out = append(out, sn.ServiceID)
	}
	return out
}

// A ?consistent read that ran locally on a leader which then lost
// leadership is re-run on the new leader, and that answer is decoded into
// the same reply, which at that point holds the rows the local run took
// from this server's state store. The answer must replace them, not be
// written into them: it was, and the old leader then served a catalog
// with one instance missing and another listed twice, for good, although
// its Raft log matched every other server's (chaos pause-leader, seeds
// 1795796255084791072 and 1795796377012752325).
func TestConsistentReadRetriedOnNewLeaderLeavesStoreIntact(t *testing.T) {
	servers := threeServers(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reg := func(s *Server, id string) {
		t.Helper()
		var out structs.WriteResponse
		err := s.RPC(ctx, structs.MethodCatalogRegister, &structs.RegisterRequest{
			Node: "n1", Address: "10.0.0.1",
			Service: &structs.NodeService{ID: id, Service: "web", Port: 80},
		}, &out)
		if err != nil {
			t.Fatalf("register %s: %v", id, err)
		}
	}
	old := leaderOf(servers...)
	reg(old, "web-1")
	reg(old, "web-3")

	var (
		args  = structs.ServiceSpecificRequest{ServiceName: "web", QueryOptions: structs.QueryOptions{RequireConsistent: true}}
		reply structs.IndexedServiceNodes
		runs  int
	)
	// watch is what a blocking read would wait on; this read does not block.
	watch := state.ServiceKey(args.ServiceName)
	err := old.read(ctx, structs.MethodCatalogServiceNodes, "", &args.QueryOptions, &reply.QueryMeta, &args, &reply, watch, func(st *state.Store) (uint64, error) {
		runs++
		var idx uint64
		idx, reply.ServiceNodes = st.ServiceNodes(args.ServiceName, args.ServiceTag)
		if runs > 1 {
			return idx, nil
		}
		// Between the local read and its leadership check, leadership
		// moves and the new leader commits web-2, so its answer differs
		// from the rows the reply holds, row for row.
		if err := old.raft.LeadershipTransfer().Error(); err != nil {
			return 0, fmt.Errorf("leadership transfer: %w", err)
		}
		var next *Server
		testutil.Eventually(t, 20*time.Second, "a new leader", func() error {
			if next = leaderOf(servers...); next == nil || next == old {
				return fmt.Errorf("leader is %v", next)
			}
			return nil
		})
		reg(next, "web-2")
		return idx, nil
	})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if runs != 1 {
		t.Fatalf("the read ran %d times locally; the test needs one local run, then the new leader", runs)
	}
	want := []string{"web-1", "web-2", "web-3"}
	got := make([]string, 0, len(reply.ServiceNodes))
	for _, sn := range reply.ServiceNodes {
		got = append(got, sn.ServiceID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("read answered %v, want %v", got, want)
	}
	for _, s := range servers {
		testutil.Eventually(t, 10*time.Second, s.cfg.NodeName+" serving web-2", func() error {
			if ids := serviceIDs(s.fsm.State(), "web"); !slices.Equal(ids, want) {
				return fmt.Errorf("%s serves %v, want %v", s.cfg.NodeName, ids, want)
			}
			return nil
		})
	}
}

// The same through the in-process RPC a server agent's HTTP API and DNS
// use: a caller reusing a reply that holds a follower's own rows, for a
// read the follower forwards to the leader, must not have the leader's
// answer written into those rows.
func TestForwardedReadIntoReusedReplyLeavesStoreIntact(t *testing.T) {
	servers := threeServers(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l := leaderOf(servers...)
	for _, svc := range []string{"web", "db"} {
		var out structs.WriteResponse
		if err := l.RPC(ctx, structs.MethodCatalogRegister, &structs.RegisterRequest{
			Node: "n1", Address: "10.0.0.1",
			Service: &structs.NodeService{ID: svc + "-1", Service: svc, Port: 80},
		}, &out); err != nil {
			t.Fatal(err)
		}
	}
	var f *Server
	for _, s := range servers {
		if s != l {
			f = s
			break
		}
	}
	testutil.Eventually(t, 10*time.Second, "the follower has both services", func() error {
		if ids := serviceIDs(f.fsm.State(), "db"); len(ids) != 1 {
			return fmt.Errorf("db instances %v", ids)
		}
		return nil
	})
	var reply structs.IndexedServiceNodes
	_, reply.ServiceNodes = f.fsm.State().ServiceNodes("web", "")
	args := structs.ServiceSpecificRequest{ServiceName: "db", QueryOptions: structs.QueryOptions{RequireConsistent: true}}
	if err := f.RPC(ctx, structs.MethodCatalogServiceNodes, &args, &reply); err != nil {
		t.Fatal(err)
	}
	if len(reply.ServiceNodes) != 1 || reply.ServiceNodes[0].ServiceID != "db-1" {
		t.Errorf("read answered %+v, want db-1", reply.ServiceNodes)
	}
	if ids := serviceIDs(f.fsm.State(), "web"); !slices.Equal(ids, []string{"web-1"}) {
		t.Errorf("after a forwarded read of db the follower serves web as %v, want [web-1]", ids)
	}
}
