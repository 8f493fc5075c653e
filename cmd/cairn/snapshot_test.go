package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap/zaptest"

	agenthttp "github.com/cairnd/cairn/agent/http"
	"github.com/cairnd/cairn/cluster/server"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

// rpcBackend serves the HTTP API's RPC calls from a real server; the
// snapshot and operator endpoints need nothing else of the agent (any
// other Backend method would panic on the nil interface, and fail the
// test).
type rpcBackend struct {
	agenthttp.Backend
	srv *server.Server
}

func (b rpcBackend) RPC(ctx context.Context, method string, args, reply any) error {
	return b.srv.RPC(ctx, method, args, reply)
}
func (b rpcBackend) Datacenter() string { return "dc1" }

// realAgent starts one server on a Pebble dir and the HTTP API over it.
func realAgent(t *testing.T) (*apiClient, *server.Server) {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.NodeName, cfg.DataDir = "srv1", t.TempDir()
	cfg.RPCPort, cfg.SerfLANPort, cfg.SerfWANPort = 0, 0, -1 // kernel-chosen ports: the server reads them back
	cfg.FastGossip = true
	cfg.Logger = zaptest.NewLogger(t)
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	hs := httptest.NewServer(agenthttp.New(rpcBackend{srv: s}, zaptest.NewLogger(t)))
	t.Cleanup(hs.Close)
	testutil.Eventually(t, 20*time.Second, "the server to lead", func() error {
		return kvSet(s, "probe", "x")
	})
	return newAPIClient(&Globals{HTTPAddr: hs.URL}), s
}

func kvSet(s *server.Server, key, value string) error {
	var out structs.WriteResponse
	return s.RPC(context.Background(), structs.MethodKVSApply, &structs.KVSRequest{Op: structs.KVSet, DirEnt: structs.DirEntry{Key: key, Value: []byte(value)}}, &out)
}

func kvValue(s *server.Server, key string) string {
	_, e := s.State().KVSGet(key)
	if e == nil {
		return "<absent>"
	}
	return string(e.Value)
}

func TestSnapshotCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real server")
	}
	api, s := realAgent(t)
	ctx := context.Background()
	if err := kvSet(s, "a", "original"); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "backup.snap")
	var out bytes.Buffer
	if err := (&SnapshotSaveCmd{File: file}).run(ctx, api, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "Saved and verified snapshot to index ") {
		t.Fatalf("save printed %q", out.String())
	}
	out.Reset()
	if err := (&SnapshotInspectCmd{File: file}).run(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{" ID ", " Size ", " Index ", " Term ", " Version ", " Nodes ", " Services ", " Checks ", " KVS            2", " PreparedQuery  0", " Coordinate     0"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("inspect output lacks %q:\n%s", want, out.String())
		}
	}
	if err := kvSet(s, "a", "changed"); err != nil {
		t.Fatal(err)
	}

	// A damaged file is refused by inspect and restore; nothing changes.
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(t.TempDir(), "damaged.snap")
	if err := os.WriteFile(damaged, good[:len(good)-20], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := (&SnapshotInspectCmd{File: damaged}).run(&out); err == nil || !strings.Contains(err.Error(), "corrupt or truncated") {
		t.Fatalf("inspect of a damaged file: %v", err)
	}
	if err := (&SnapshotRestoreCmd{File: damaged}).run(ctx, api, &out); err == nil || !strings.Contains(err.Error(), "corrupt or truncated") {
		t.Fatalf("restore of a damaged file: %v", err)
	}
	if got := kvValue(s, "a"); got != "changed" {
		t.Fatalf("refused restore changed a to %q", got)
	}

	out.Reset()
	if err := (&SnapshotRestoreCmd{File: file}).run(ctx, api, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "Restored snapshot\n" || kvValue(s, "a") != "original" {
		t.Fatalf("restore printed %q; a = %q", out.String(), kvValue(s, "a"))
	}
}

func TestOperatorRecoveryCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real server")
	}
	api, s := realAgent(t)
	ctx := context.Background()
	var out bytes.Buffer
	if err := (&OperatorAutopilotGetConfigCmd{}).run(ctx, api, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CleanupDeadServers = true\n", "LastContactThreshold = 200ms\n", "ServerStabilizationTime = 10s\n", "MaxTrailingLogs = 250\n"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("get-config lacks %q:\n%s", want, out.String())
		}
	}
	testutil.Eventually(t, 20*time.Second, "a healthy state report", func() error {
		var o bytes.Buffer
		if err := (&OperatorAutopilotStateCmd{}).run(ctx, api, &o); err != nil {
			return err
		}
		if !strings.Contains(o.String(), "Healthy:           true") || !strings.Contains(o.String(), "srv1") {
			return &apiError{Body: o.String()}
		}
		return nil
	})

	for _, p := range []struct{ id, addr string }{{"ghost1", "127.0.0.1:1"}, {"ghost2", "127.0.0.1:2"}} {
		if err := s.Raft().AddNonvoter(raft.ServerID(p.id), raft.ServerAddress(p.addr), 0, 0).Error(); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	if err := (&OperatorRaftRemovePeerCmd{ID: "ghost1"}).run(ctx, api, &out); err != nil || out.String() != "Removed peer with id ghost1\n" {
		t.Fatalf("remove by id: %q %v", out.String(), err)
	}
	if err := (&OperatorRaftRemovePeerCmd{Address: "127.0.0.1:2"}).run(ctx, api, &out); err != nil {
		t.Fatalf("remove by address: %v", err)
	}
	f := s.Raft().GetConfiguration()
	if err := f.Error(); err != nil || len(f.Configuration().Servers) != 1 {
		t.Fatalf("raft configuration after removals: %+v %v", f.Configuration(), err)
	}
	if err := (&OperatorRaftRemovePeerCmd{ID: "ghost1"}).run(ctx, api, &out); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("remove of an unknown peer: %v", err)
	}
	if err := (&OperatorRaftRemovePeerCmd{}).run(ctx, api, &out); err == nil || !strings.Contains(err.Error(), "exactly one") {
		t.Fatalf("remove without a peer: %v", err)
	}
	// A lone server has no one to hand leadership to; naming no peer or an
	// unknown one fails, and it stays leader.
	for _, id := range []string{"", "ghost9"} {
		err := (&OperatorRaftTransferLeaderCmd{ID: id}).run(ctx, api, &out)
		if err == nil || !strings.HasPrefix(err.Error(), "Error transferring leadership") {
			t.Fatalf("transfer-leader %q on a lone server: %v", id, err)
		}
	}
	if !s.IsLeader() {
		t.Fatal("a failed transfer moved leadership")
	}
}

func TestRecoveryCommandsTakeConsulFlags(t *testing.T) {
	got := consulArgs([]string{"operator", "raft", "remove-peer", "-id", "s3"})
	if want := []string{"operator", "raft", "remove-peer", "--id", "s3"}; !slices.Equal(got, want) {
		t.Fatalf("consulArgs = %q, want %q", got, want)
	}
	got = consulArgs([]string{"snapshot", "save", "-stale", "backup.snap"})
	if want := []string{"snapshot", "save", "--stale", "backup.snap"}; !slices.Equal(got, want) {
		t.Fatalf("consulArgs = %q, want %q", got, want)
	}
}
