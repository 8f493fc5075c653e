package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/snapshot"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"
	"github.com/prometheus/client_golang/prometheus"
)

func kvPut(ctx context.Context, s *Server, key, value string) error {
	var out structs.WriteResponse
	return s.RPC(ctx, structs.MethodKVSApply, &structs.KVSRequest{Op: structs.KVSet, DirEnt: structs.DirEntry{Key: key, Value: []byte(value)}}, &out)
}

// kvDump is every key=value of s's local state, sorted.
func kvDump(s *Server) []string {
	_, entries := s.State().KVSList("")
	var out []string
	for _, e := range entries {
		out = append(out, e.Key+"="+string(e.Value))
	}
	return out
}

// webDump is every instance of service "web" in s's local state.
func webDump(s *Server) []string {
	_, nodes := s.State().ServiceNodes("web", "")
	var out []string
	for _, n := range nodes {
		out = append(out, fmt.Sprintf("%s/%s/%s:%d", n.Node, n.ServiceID, n.Address, n.ServicePort))
	}
	slices.Sort(out)
	return out
}

func raftServerIDs(t *testing.T, s *Server) []string {
	t.Helper()
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, srv := range f.Configuration().Servers {
		ids = append(ids, string(srv.ID))
	}
	slices.Sort(ids)
	return ids
}

func followerOf(all ...*Server) *Server {
	for _, s := range all {
		if !s.IsLeader() {
			return s
		}
	}
	return nil
}

// TestPeersJSONRecoversSurvivor kills two of three servers for good and
// brings the survivor back alone with peers.json: every write
// acknowledged before the loss is there, and it accepts writes again.
func TestPeersJSONRecoversSurvivor(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-server recovery test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	a := testServer(t, "s1", 3, dirs[0], nil, nil)
	b := testServer(t, "s2", 3, dirs[1], []string{serfAddr(a)}, nil)
	c := testServer(t, "s3", 3, dirs[2], []string{serfAddr(a)}, nil)
	all := []*Server{a, b, c}
	testutil.Eventually(t, 30*time.Second, "a leader with 3 voters", func() error {
		l := leaderOf(all...)
		if l == nil {
			return errors.New("no leader")
		}
		if ids := raftServerIDs(t, l); len(ids) != 3 {
			return fmt.Errorf("servers %v", ids)
		}
		return nil
	})
	var acked []string
	for i := range 40 {
		k, v := fmt.Sprintf("k/%02d", i), fmt.Sprintf("v%d", i)
		if err := kvPut(ctx, all[i%3], k, v); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
		acked = append(acked, k+"="+v)
	}
	// The survivor is a follower, so the recovery cannot lean on it
	// having been the leader; the other two die without leaving.
	survivor := followerOf(all...)
	for _, s := range all {
		if s != survivor {
			s.Close()
		}
	}
	port := survivor.advertiseRPC().Port
	addr := survivor.RPCAddr()
	name, dir := survivor.cfg.NodeName, survivor.cfg.DataDir
	survivor.Close()

	peers := fmt.Sprintf(`[{"id": %q, "address": %q, "non_voter": false}]`, name, addr)
	peersPath := filepath.Join(dir, "raft", "peers.json")
	if err := os.WriteFile(peersPath, []byte(peers), 0o600); err != nil {
		t.Fatal(err)
	}
	r := testServer(t, name, 3, dir, nil, func(c *Config) { c.RPCPort = port })
	testutil.Eventually(t, 30*time.Second, "the recovered server to lead", func() error {
		if !r.IsLeader() || !r.readyForReads.Load() {
			return errors.New("not leader yet")
		}
		return nil
	})
	if _, err := os.Stat(peersPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("peers.json still present after recovery: %v", err)
	}
	if got := raftServerIDs(t, r); !slices.Equal(got, []string{name}) {
		t.Fatalf("raft configuration after recovery: %v", got)
	}
	got := kvDump(r)
	for _, want := range acked {
		if !slices.Contains(got, want) {
			t.Fatalf("acknowledged write %s lost after recovery; have %d keys", want, len(got))
		}
	}
	if err := kvPut(ctx, r, "after", "recovery"); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
}

func TestParsePeersJSON(t *testing.T) {
	for _, tc := range []struct {
		name, in, err string
	}{
		{"ok", `[{"id":"a","address":"127.0.0.1:8300","non_voter":false},{"id":"b","address":"127.0.0.2:8300","non_voter":true}]`, ""},
		{"old format", `["127.0.0.1:8300"]`, "old list-of-addresses format"},
		{"empty", `[]`, "no voter"},
		{"only non-voters", `[{"id":"a","address":"127.0.0.1:8300","non_voter":true}]`, "no voter"},
		{"no id", `[{"address":"127.0.0.1:8300"}]`, "has no id"},
		{"bad address", `[{"id":"a","address":"127.0.0.1"}]`, "address"},
		{"duplicate id", `[{"id":"a","address":"127.0.0.1:1"},{"id":"a","address":"127.0.0.1:2"}]`, "duplicate"},
		{"unknown key", `[{"id":"a","address":"127.0.0.1:1","voter":true}]`, "unknown field"},
		{"trailing", `[{"id":"a","address":"127.0.0.1:1"}] []`, "unexpected data"},
		{"syntax", `[{"id":`, "peers.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf, err := ParsePeersJSON([]byte(tc.in))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(conf.Servers) != 2 || conf.Servers[1].Suffrage != raft.Nonvoter || conf.Servers[0].Suffrage != raft.Voter {
					t.Fatalf("configuration %+v", conf)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

// TestBadPeersJSONStopsStart: a malformed peers.json stops the server
// with the reason and leaves the file and the data alone.
func TestBadPeersJSONStopsStart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a server")
	}
	dir := t.TempDir()
	s := testServer(t, "solo", 1, dir, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kvPut(ctx, s, "keep", "me"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	peersPath := filepath.Join(dir, "raft", "peers.json")
	if err := os.WriteFile(peersPath, []byte(`["127.0.0.1:8300"]`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	// Recovery runs before serf starts, so the serf ports never bind here.
	cfg.NodeName, cfg.DataDir, cfg.RPCPort, cfg.SerfLANPort = "solo", dir, 0, 0
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "old list-of-addresses") {
		t.Fatalf("start with a bad peers.json: %v", err)
	}
	if _, err := os.Stat(peersPath); err != nil {
		t.Fatalf("bad peers.json was removed: %v", err)
	}
	if err := os.Remove(peersPath); err != nil {
		t.Fatal(err)
	}
	r := testServer(t, "solo", 1, dir, nil, nil)
	testutil.Eventually(t, 20*time.Second, "restart to lead", func() error {
		if !r.IsLeader() || !r.readyForReads.Load() {
			return errors.New("not leader")
		}
		return nil
	})
	if got := kvDump(r); !slices.Equal(got, []string{"keep=me"}) {
		t.Fatalf("state after the refused recovery: %v", got)
	}
}

// TestSnapshotSaveWipeRestore: save → wipe every data dir → restore into
// a fresh cluster gives the same catalog and KV on every server; a
// corrupted or truncated archive is refused and changes nothing.
func TestSnapshotSaveWipeRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-server snapshot test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	old := threeServers(t, nil)
	for i := range 20 {
		if _, err := register(ctx, old[i%3], fmt.Sprintf("n%d", i%5), i); err != nil {
			t.Fatal(err)
		}
		if err := kvPut(ctx, old[(i+1)%3], fmt.Sprintf("app/%02d", i), fmt.Sprintf("value-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	l := leaderOf(old...)
	wantKV, wantWeb := kvDump(l), webDump(l)
	if len(wantKV) != 20 || len(wantWeb) != 20 {
		t.Fatalf("setup: %d keys, %d web instances", len(wantKV), len(wantWeb))
	}
	var saved structs.SnapshotResponse
	if err := followerOf(old...).RPC(ctx, structs.MethodSnapshotSave, &structs.SnapshotRequest{}, &saved); err != nil {
		t.Fatalf("save through a follower: %v", err)
	}
	file := filepath.Join(t.TempDir(), "backup.snap")
	if err := snapshot.SaveFile(file, saved.Archive); err != nil {
		t.Fatal(err)
	}
	for _, s := range old {
		s.Close()
		if err := os.RemoveAll(s.cfg.DataDir); err != nil {
			t.Fatal(err)
		}
	}

	fresh := threeServers(t, nil)
	if err := kvPut(ctx, leaderOf(fresh...), "app/00", "overwritten-before-restore"); err != nil {
		t.Fatal(err)
	}
	archive, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt and truncated archives are refused; nothing changes.
	// The leader may append entries of its own meanwhile (member
	// reconcile), so the raft index is no witness; the state and the
	// snapshot a restore installs are.
	before := kvDump(leaderOf(fresh...))
	snapsBefore := snapshotIndexes(fresh)
	flipped := bytes.Clone(archive)
	flipped[len(flipped)/2] ^= 0x40
	for name, bad := range map[string][]byte{"flipped": flipped, "truncated": archive[:len(archive)-7], "empty": nil} {
		var out structs.SnapshotResponse
		err := followerOf(fresh...).RPC(ctx, structs.MethodSnapshotRestore, &structs.SnapshotRequest{Archive: bad}, &out)
		if err == nil || !errors.Is(err, snapshot.ErrCorrupt) {
			t.Fatalf("%s archive: restore answered %v, want ErrCorrupt", name, err)
		}
		// And on the leader itself (no agent-side check).
		err = leaderOf(fresh...).RestoreSnapshot(ctx, bad, &out)
		if !errors.Is(err, snapshot.ErrCorrupt) {
			t.Fatalf("%s archive on the leader: %v", name, err)
		}
	}
	if got := kvDump(leaderOf(fresh...)); !slices.Equal(got, before) {
		t.Fatalf("a refused restore changed the state: %v, want %v", got, before)
	}
	if got := snapshotIndexes(fresh); !slices.Equal(got, snapsBefore) {
		t.Fatalf("a refused restore installed a snapshot: last snapshot indexes %v → %v", snapsBefore, got)
	}

	var out structs.SnapshotResponse
	if err := followerOf(fresh...).RPC(ctx, structs.MethodSnapshotRestore, &structs.SnapshotRequest{Archive: archive}, &out); err != nil {
		t.Fatalf("restore through a follower: %v", err)
	}
	for _, s := range fresh {
		testutil.Eventually(t, 30*time.Second, s.cfg.NodeName+" to hold the restored state", func() error {
			if got := kvDump(s); !slices.Equal(got, wantKV) {
				return fmt.Errorf("kv %v", got)
			}
			if got := webDump(s); !slices.Equal(got, wantWeb) {
				return fmt.Errorf("web %v", got)
			}
			return nil
		})
	}
	// The cluster still takes writes after the restore.
	if err := kvPut(ctx, followerOf(fresh...), "after", "restore"); err != nil {
		t.Fatal(err)
	}
}

// snapshotIndexes is each server's last snapshot index, as raft reports it.
func snapshotIndexes(servers []*Server) []string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = s.raft.Stats()["last_snapshot_index"]
	}
	return out
}

// TestAutopilotRemovesDeadServerAndReplacementJoins: a server that dies
// is removed from Raft by the leader's autopilot; a new server joins in
// its place; the health report follows.
func TestAutopilotRemovesDeadServerAndReplacementJoins(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-server autopilot test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := threeServers(t, func(c *Config) { c.Registry = prometheus.NewRegistry() })
	testutil.Eventually(t, 30*time.Second, "a healthy cluster", func() error {
		var h structs.OperatorHealthReply
		if err := followerOf(all...).RPC(ctx, structs.MethodOperatorServerHealth, &structs.DCSpecificRequest{}, &h); err != nil {
			return err
		}
		if !h.Healthy || h.FailureTolerance != 1 || len(h.Servers) != 3 {
			return fmt.Errorf("health %+v", h)
		}
		leaders := 0
		for _, s := range h.Servers {
			if s.Leader {
				leaders++
			}
			if !s.Voter || s.SerfStatus != "alive" || s.LastIndex == 0 || s.StableSince.IsZero() {
				return fmt.Errorf("server %+v", s)
			}
		}
		if leaders != 1 {
			return fmt.Errorf("%d leaders in %+v", leaders, h)
		}
		// The leader exports the same view as metrics.
		l := leaderOf(all...)
		if l == nil {
			return errors.New("no leader")
		}
		mfs, err := l.cfg.Registry.(*prometheus.Registry).Gather()
		if err != nil {
			return err
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			if strings.HasPrefix(mf.GetName(), "cairn_autopilot_") {
				got[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		if got["cairn_autopilot_healthy"] != 1 || got["cairn_autopilot_failure_tolerance"] != 1 {
			return fmt.Errorf("autopilot metrics %v", got)
		}
		return nil
	})
	dead := followerOf(all...)
	deadName := dead.cfg.NodeName
	dead.Close()
	var live []*Server
	for _, s := range all {
		if s != dead {
			live = append(live, s)
		}
	}
	testutil.Eventually(t, 45*time.Second, "autopilot to remove "+deadName, func() error {
		l := leaderOf(live...)
		if l == nil {
			return errors.New("no leader")
		}
		if ids := raftServerIDs(t, l); slices.Contains(ids, deadName) {
			return fmt.Errorf("still in raft: %v", ids)
		}
		return nil
	})
	s4 := testServer(t, "s4", 3, t.TempDir(), []string{serfAddr(live[0])}, nil)
	all = append(live, s4)
	testutil.Eventually(t, 45*time.Second, "the replacement to join as a voter", func() error {
		l := leaderOf(all...)
		if l == nil {
			return errors.New("no leader")
		}
		f := l.raft.GetConfiguration()
		if err := f.Error(); err != nil {
			return err
		}
		voters := 0
		for _, srv := range f.Configuration().Servers {
			if srv.Suffrage == raft.Voter {
				voters++
			}
		}
		if ids := raftServerIDs(t, l); !slices.Contains(ids, "s4") || len(ids) != 3 || voters != 3 {
			return fmt.Errorf("raft servers %v, %d voters", ids, voters)
		}
		return nil
	})
	if err := kvPut(ctx, s4, "via", "replacement"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, "the replacement to replicate", func() error {
		if !slices.Contains(kvDump(s4), "via=replacement") {
			return errors.New("not yet")
		}
		return nil
	})
}

// TestRemovePeer: remove-peer by ID and by address through a follower
// (forwarded to the leader); unknown peers and bad requests are refused.
func TestRemovePeer(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-server test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	noCleanup := func(c *Config) { c.Autopilot.CleanupDeadServers = false }
	all := threeServers(t, noCleanup)
	l := leaderOf(all...)
	var others []*Server
	for _, s := range all {
		if s != l {
			others = append(others, s)
		}
	}
	var out struct{}
	for _, tc := range []struct {
		req structs.RaftRemovePeerRequest
		err string
	}{
		{structs.RaftRemovePeerRequest{}, "exactly one"},
		{structs.RaftRemovePeerRequest{ID: "a", Address: "b"}, "exactly one"},
		{structs.RaftRemovePeerRequest{ID: "nope"}, `id "nope" was not found`},
		{structs.RaftRemovePeerRequest{Address: "127.0.0.1:1"}, `address "127.0.0.1:1" was not found`},
	} {
		err := others[0].RPC(ctx, structs.MethodOperatorRaftRemovePeer, &tc.req, &out)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Fatalf("remove %+v: %v, want %q", tc.req, err, tc.err)
		}
	}
	// A dead server is removed by ID through a follower (cleanup is off:
	// only the operator's command removes it), then a live one by address
	// (a second dead one could not be: the removal needs a quorum).
	byID, byAddr := others[0], others[1]
	idName, addrName, addr := byID.cfg.NodeName, byAddr.cfg.NodeName, byAddr.RPCAddr()
	byID.Close()
	// Until serf sees it fail, the leader's reconciliation would add an
	// "alive" server straight back.
	testutil.Eventually(t, 30*time.Second, "serf to see "+idName+" fail", func() error {
		for _, m := range l.LAN().Members() {
			if m.Name == idName && m.Status != serf.StatusFailed {
				return fmt.Errorf("status %s", m.Status)
			}
		}
		return nil
	})
	if err := byAddr.RPC(ctx, structs.MethodOperatorRaftRemovePeer, &structs.RaftRemovePeerRequest{ID: idName}, &out); err != nil {
		t.Fatalf("remove by id through a follower: %v", err)
	}
	if ids := raftServerIDs(t, l); slices.Contains(ids, idName) || len(ids) != 2 {
		t.Fatalf("after remove by id: %v", ids)
	}
	if err := l.RPC(ctx, structs.MethodOperatorRaftRemovePeer, &structs.RaftRemovePeerRequest{Address: addr}, &out); err != nil {
		t.Fatalf("remove by address: %v", err)
	}
	if ids := raftServerIDs(t, l); !slices.Equal(ids, []string{l.cfg.NodeName}) {
		t.Fatalf("after remove of %s by address: %v", addrName, ids)
	}
	if err := kvPut(ctx, l, "alone", "and-writable"); err != nil {
		t.Fatalf("write on the remaining server: %v", err)
	}
}

// TestAutopilotKeepsFailedServerWithinStabilization: a failed server keeps
// its Raft seat until it has been unhealthy for server_stabilization_time
// (here far longer than the test), so a paused server keeps its vote.
func TestAutopilotKeepsFailedServerWithinStabilization(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-server autopilot test")
	}
	all := threeServers(t, func(c *Config) { c.Autopilot.ServerStabilizationTime = time.Hour })
	dead := followerOf(all...)
	deadName := dead.cfg.NodeName
	dead.Close()
	var l *Server
	var seenAt uint64
	testutil.Eventually(t, 30*time.Second, "the leader to see "+deadName+" failed", func() error {
		if l = leaderOf(all...); l == nil {
			return errors.New("no leader")
		}
		h := l.autopilot.health()
		if h == nil {
			return errors.New("no report")
		}
		for _, s := range h.Servers {
			if s.Name == deadName && s.SerfStatus == "failed" && !s.Healthy {
				l.autopilot.mu.Lock()
				seenAt = l.autopilot.passes
				l.autopilot.mu.Unlock()
				return nil
			}
		}
		return fmt.Errorf("report %+v", h.Servers)
	})
	testutil.Eventually(t, 30*time.Second, "five more autopilot passes", func() error {
		l.autopilot.mu.Lock()
		defer l.autopilot.mu.Unlock()
		if l.autopilot.passes < seenAt+5 {
			return fmt.Errorf("%d passes", l.autopilot.passes-seenAt)
		}
		return nil
	})
	if ids := raftServerIDs(t, l); !slices.Contains(ids, deadName) {
		t.Fatalf("%s removed within its stabilization time: %v", deadName, ids)
	}
}
