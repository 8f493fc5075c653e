package server

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
)

// testServer starts one server with kernel-chosen ports on 127.0.0.1.
func testServer(t *testing.T, name string, expect int, dir string, join []string, mod func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeName = name
	cfg.BootstrapExpect = expect
	cfg.DataDir = dir
	cfg.InMemory = dir == ""
	cfg.RPCPort = 0
	cfg.SerfLANPort = 0  // kernel-chosen; serfAddr reads the bound port back
	cfg.SerfWANPort = -1 // no WAN pool
	cfg.RetryJoin = join
	cfg.FastGossip = true
	cfg.Logger = zaptest.NewLogger(t).Named(name)
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func leaderOf(servers ...*Server) *Server {
	for _, s := range servers {
		if s.IsLeader() {
			return s
		}
	}
	return nil
}

func serfAddr(s *Server) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(serfPort(s))) }

// serfPort is the LAN port s bound.
func serfPort(s *Server) int { return int(s.LAN().LocalMember().Port) }

func threeServers(t *testing.T, mod func(*Config)) []*Server {
	a := testServer(t, "s1", 3, t.TempDir(), nil, mod)
	b := testServer(t, "s2", 3, t.TempDir(), []string{serfAddr(a)}, mod)
	c := testServer(t, "s3", 3, t.TempDir(), []string{serfAddr(a)}, mod)
	all := []*Server{a, b, c}
	testutil.Eventually(t, 30*time.Second, "a leader with 3 voters", func() error {
		l := leaderOf(all...)
		if l == nil {
			return fmt.Errorf("no leader")
		}
		f := l.raft.GetConfiguration()
		if err := f.Error(); err != nil {
			return err
		}
		if n := len(f.Configuration().Servers); n != 3 {
			return fmt.Errorf("%d servers in configuration", n)
		}
		return nil
	})
	return all
}

func register(ctx context.Context, s *Server, node string, i int) (uint64, error) {
	var out structs.WriteResponse
	err := s.RPC(ctx, structs.MethodCatalogRegister, &structs.RegisterRequest{
		Node: node, Address: "10.0.0." + strconv.Itoa(i%250+1),
		Service: &structs.NodeService{ID: "web-" + strconv.Itoa(i), Service: "web", Port: 80 + i},
	}, &out)
	return out.Index, err
}

func TestSingleServerDevWritesAndReads(t *testing.T) {
	s := testServer(t, "dev", 1, "", nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	idx, err := register(ctx, s, "n1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if idx == 0 {
		t.Fatal("write acknowledged with index 0")
	}
	var out structs.IndexedCheckServiceNodes
	if err := s.RPC(ctx, structs.MethodHealthServiceNodes, &structs.ServiceSpecificRequest{ServiceName: "web"}, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Nodes) != 1 || out.Nodes[0].Service.Port != 81 || !out.KnownLeader || out.Index < idx {
		t.Fatalf("unexpected read: %+v", out)
	}
	// The server registered itself as service "consul" with serfHealth.
	testutil.Eventually(t, 10*time.Second, "consul service", func() error {
		var o structs.IndexedCheckServiceNodes
		if err := s.RPC(ctx, structs.MethodHealthServiceNodes, &structs.ServiceSpecificRequest{ServiceName: "consul", PassingOnly: true}, &o); err != nil {
			return err
		}
		if len(o.Nodes) != 1 {
			return fmt.Errorf("%d consul instances", len(o.Nodes))
		}
		return nil
	})
}

func TestBlockingQueryWakes(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := testServer(t, "dev", 1, "", nil, func(c *Config) { c.Registry = reg })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var first structs.WriteResponse
	if err := s.RPC(ctx, structs.MethodKVSApply, &structs.KVSRequest{Op: structs.KVSet, DirEnt: structs.DirEntry{Key: "a", Value: []byte("1")}}, &first); err != nil {
		t.Fatal(err)
	}
	done := make(chan structs.IndexedDirEntries, 1)
	go func() {
		var out structs.IndexedDirEntries
		s.RPC(ctx, structs.MethodKVSGet, &structs.KeyRequest{Key: "a", QueryOptions: structs.QueryOptions{MinQueryIndex: first.Index, MaxQueryTime: 10 * time.Second}}, &out)
		done <- out
	}()
	// The query is waiting once its flight started; one that returned
	// early would carry value 1 at the first index, failing the check below.
	testutil.Eventually(t, 10*time.Second, "the blocking query to start", func() error {
		if started, _ := blockingQueries(t, reg); started != 1 {
			return fmt.Errorf("%v blocking queries started", started)
		}
		return nil
	})
	var second structs.WriteResponse
	if err := s.RPC(ctx, structs.MethodKVSApply, &structs.KVSRequest{Op: structs.KVSet, DirEnt: structs.DirEntry{Key: "a", Value: []byte("2")}}, &second); err != nil {
		t.Fatal(err)
	}
	select {
	case out := <-done:
		if out.Index <= first.Index || len(out.Entries) != 1 || string(out.Entries[0].Value) != "2" {
			t.Fatalf("woke with %+v", out)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocking query did not wake")
	}
}

func TestThreeServersForwardAndCatchUpBySnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-server raft test")
	}
	small := func(c *Config) {
		c.RaftSnapshotThreshold = 64
		c.RaftTrailingLogs = 16
		c.RaftSnapshotInterval = 200 * time.Millisecond
	}
	all := threeServers(t, small)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var follower, lagger *Server
	for _, s := range all {
		if !s.IsLeader() {
			if follower == nil {
				follower = s
			} else {
				lagger = s
			}
		}
	}
	// A write sent to a follower is forwarded to the leader.
	if _, err := register(ctx, follower, "via-follower", 1); err != nil {
		t.Fatalf("write through follower: %v", err)
	}
	// Consistent read through a follower is answered by the leader.
	var out structs.IndexedNodes
	if err := follower.RPC(ctx, structs.MethodCatalogListNodes, &structs.DCSpecificRequest{QueryOptions: structs.QueryOptions{RequireConsistent: true}}, &out); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range out.Nodes {
		found = found || n.Node == "via-follower"
	}
	if !found {
		t.Fatalf("consistent read misses the write: %+v", out.Nodes)
	}

	// Stop one follower, write enough for the leader to snapshot and
	// truncate its log, then restart it: it must catch up by snapshot.
	lagDir, lagName := lagger.cfg.DataDir, lagger.cfg.NodeName
	lagPort := serfPort(lagger)
	lagRPC := lagger.advertiseRPC().Port
	lagger.Close()
	lagLast, _ := lagger.store.LastIndex()
	leader := leaderOf(all...)
	const n = 400
	for i := 0; i < n; i++ {
		var w structs.WriteResponse
		if err := leader.RPC(ctx, structs.MethodKVSApply, &structs.KVSRequest{Op: structs.KVSet, DirEnt: structs.DirEntry{Key: "k/" + strconv.Itoa(i), Value: []byte("v")}}, &w); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	testutil.Eventually(t, 20*time.Second, "leader snapshot", func() error {
		first, _ := leader.store.FirstIndex()
		if first <= lagLast+1 {
			return fmt.Errorf("log not compacted past the stopped follower yet (first index %d, follower has %d)", first, lagLast)
		}
		return nil
	})
	restarted := testServer(t, lagName, 3, lagDir, []string{serfAddr(leader)}, func(c *Config) {
		small(c)
		c.SerfLANPort = lagPort
		c.RPCPort = lagRPC
	})
	testutil.Eventually(t, 30*time.Second, "restarted follower catches up", func() error {
		_, keys := restarted.State().KVSListKeys("k/", "")
		if len(keys) != n {
			return fmt.Errorf("%d of %d keys", len(keys), n)
		}
		return nil
	})
	// Raft records the installed snapshot in its stats just after the FSM
	// restore that made the keys visible; the leader's log no longer holds
	// the entries the follower missed, so a snapshot is the only way.
	testutil.Eventually(t, 10*time.Second, "installed snapshot recorded", func() error {
		if restarted.raft.Stats()["last_snapshot_index"] == "0" {
			return fmt.Errorf("no snapshot recorded yet: %v", restarted.raft.Stats())
		}
		return nil
	})
	if got := restarted.raft.State(); got == raft.Shutdown {
		t.Fatalf("restarted server is %v", got)
	}
}
