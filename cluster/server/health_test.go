package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/gossip"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
	"go.uber.org/zap/zaptest"
)

// clientPool joins a client-role serf member to s's LAN pool.
func clientPool(t *testing.T, s *Server, name string) *gossip.Pool {
	t.Helper()
	p, err := gossip.New(gossip.Config{
		NodeName: name, BindAddr: "127.0.0.1", BindPort: 0,
		Tags: map[string]string{gossip.TagRole: gossip.RoleClient, gossip.TagDC: "dc1"},
		Fast: true,
	}, zaptest.NewLogger(t).Named(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown() })
	go func() {
		for range p.Events() {
		}
	}()
	if _, err := p.Join([]string{serfAddr(s)}); err != nil {
		t.Fatal(err)
	}
	return p
}

func serfHealth(s *Server, node string) (string, bool) {
	_, checks := s.State().NodeChecks(node)
	for _, c := range checks {
		if c.CheckID == structs.SerfCheckID {
			return c.Status, true
		}
	}
	return "", false
}

// The leader keeps serfHealth in step with gossip: alive → passing,
// failed → critical (and the node's services leave passing-only reads),
// left → node deregistered.
func TestSerfHealthFollowsMembership(t *testing.T) {
	if testing.Short() {
		t.Skip("gossip failure detection takes seconds")
	}
	s := testServer(t, "leader", 1, "", nil, nil)
	testutil.Eventually(t, 10*time.Second, "leadership", func() error {
		if !s.IsLeader() {
			return fmt.Errorf("not leader")
		}
		return nil
	})
	failing := clientPool(t, s, "failing")
	leaving := clientPool(t, s, "leaving")
	for _, n := range []string{"failing", "leaving"} {
		testutil.Eventually(t, 10*time.Second, n+" passing", func() error {
			if st, ok := serfHealth(s, n); !ok || st != structs.HealthPassing {
				return fmt.Errorf("serfHealth %q (present %v)", st, ok)
			}
			return nil
		})
	}
	// A service on the failing node, visible while healthy.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var w structs.WriteResponse
	if err := s.RPC(ctx, structs.MethodCatalogRegister, &structs.RegisterRequest{
		Node: "failing", Address: "127.0.0.1", SkipNodeUpdate: true,
		Service: &structs.NodeService{ID: "api", Service: "api", Port: 9000},
	}, &w); err != nil {
		t.Fatal(err)
	}
	passing := func() int {
		var out structs.IndexedCheckServiceNodes
		s.RPC(ctx, structs.MethodHealthServiceNodes, &structs.ServiceSpecificRequest{ServiceName: "api", PassingOnly: true}, &out)
		return len(out.Nodes)
	}
	if n := passing(); n != 1 {
		t.Fatalf("healthy service: %d passing instances", n)
	}

	failing.Shutdown() // no leave: peers must detect the failure
	testutil.Eventually(t, 30*time.Second, "failed node critical", func() error {
		if st, _ := serfHealth(s, "failing"); st != structs.HealthCritical {
			return fmt.Errorf("serfHealth %q", st)
		}
		return nil
	})
	if n := passing(); n != 0 {
		t.Fatalf("failed node's service still passing: %d", n)
	}

	if err := leaving.Leave(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "left node deregistered", func() error {
		if _, n := s.State().Node("leaving"); n != nil {
			return fmt.Errorf("node still registered")
		}
		return nil
	})
}
