package http

import (
	"bytes"
	"context"
	"errors"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/raft"
	"go.uber.org/zap/zaptest"

	"github.com/cairnd/cairn/cluster/server"
	"github.com/cairnd/cairn/cluster/testutil"
)

// serverBackend is the test backend with RPC served by a real server
// (Raft on a Pebble dir), so the operator endpoints run end to end.
type serverBackend struct {
	*testBackend
	srv *server.Server
}

func (b *serverBackend) RPC(ctx context.Context, method string, args, reply any) error {
	return b.srv.RPC(ctx, method, args, reply)
}

// newServerAPI starts one real server and the API over it, and returns
// the official client.
func newServerAPI(t *testing.T) (*api.Client, *server.Server, string) {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.NodeName = "srv1"
	cfg.DataDir = t.TempDir()
	cfg.RPCPort, cfg.SerfLANPort, cfg.SerfWANPort = 0, 0, -1 // kernel-chosen ports: the server reads them back
	cfg.FastGossip = true
	cfg.Logger = zaptest.NewLogger(t)
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	hs := httptest.NewServer(New(&serverBackend{testBackend: newTestBackend(), srv: s}, zaptest.NewLogger(t)))
	t.Cleanup(hs.Close)
	ac := api.DefaultConfig()
	ac.Address = strings.TrimPrefix(hs.URL, "http://")
	c, err := api.NewClient(ac)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, "the server to lead", func() error {
		if _, err := c.KV().Put(&api.KVPair{Key: "probe", Value: []byte("x")}, nil); err != nil {
			return err
		}
		return nil
	})
	return c, s, hs.URL
}

func kvGet(t *testing.T, c *api.Client, key string) string {
	t.Helper()
	p, _, err := c.KV().Get(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p == nil {
		return "<absent>"
	}
	return string(p.Value)
}

// TestSnapshotAPI: the official client saves a snapshot, a damaged one is
// refused with 400 and changes nothing, the saved one restores.
func TestSnapshotAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real server")
	}
	c, _, base := newServerAPI(t)
	if _, err := c.KV().Put(&api.KVPair{Key: "a", Value: []byte("original")}, nil); err != nil {
		t.Fatal(err)
	}
	rc, qm, err := c.Snapshot().Save(nil)
	if err != nil {
		t.Fatal(err)
	}
	archive, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || len(archive) == 0 || qm.LastIndex == 0 {
		t.Fatalf("save: %d bytes, index %d, %v", len(archive), qm.LastIndex, err)
	}
	if _, err := c.KV().Put(&api.KVPair{Key: "a", Value: []byte("changed")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KV().Put(&api.KVPair{Key: "b", Value: []byte("new")}, nil); err != nil {
		t.Fatal(err)
	}

	bad := bytes.Clone(archive)
	bad[len(bad)/2] ^= 0xff
	for name, body := range map[string][]byte{"flipped": bad, "truncated": archive[:len(archive)/3], "text": []byte("not a snapshot")} {
		req, _ := nethttp.NewRequest(nethttp.MethodPut, base+"/v1/snapshot", bytes.NewReader(body))
		resp, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != nethttp.StatusBadRequest || !strings.Contains(string(msg), "corrupt or truncated") {
			t.Fatalf("%s archive: %d %s", name, resp.StatusCode, msg)
		}
	}
	if got := kvGet(t, c, "a") + "," + kvGet(t, c, "b"); got != "changed,new" {
		t.Fatalf("a refused restore changed the state: %s", got)
	}

	if err := c.Snapshot().Restore(nil, bytes.NewReader(archive)); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := kvGet(t, c, "a") + "," + kvGet(t, c, "b"); got != "original,<absent>" {
		t.Fatalf("after restore: %s", got)
	}
	// Writes go on after the restore.
	if _, err := c.KV().Put(&api.KVPair{Key: "b", Value: []byte("again")}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestOperatorAPI: autopilot configuration and health in Consul's JSON
// (read by the official client), and remove-peer by ID and by address.
func TestOperatorAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real server")
	}
	c, s, base := newServerAPI(t)
	op := c.Operator()
	conf, err := op.AutopilotGetConfiguration(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !conf.CleanupDeadServers || conf.LastContactThreshold.Duration() != 200*time.Millisecond ||
		conf.ServerStabilizationTime.Duration() != 10*time.Second || conf.MaxTrailingLogs != 250 {
		t.Fatalf("autopilot configuration %+v", conf)
	}
	testutil.Eventually(t, 20*time.Second, "a healthy report", func() error {
		h, err := op.AutopilotServerHealth(nil)
		if err != nil {
			return err
		}
		if !h.Healthy || h.FailureTolerance != 0 || len(h.Servers) != 1 {
			return errors.New("not healthy yet")
		}
		sv := h.Servers[0]
		if sv.Name != "srv1" || !sv.Leader || !sv.Voter || sv.SerfStatus != "alive" || sv.LastIndex == 0 || sv.StableSince.IsZero() {
			return errors.New("unexpected server entry")
		}
		return nil
	})

	// Two peers that do not exist (non-voters, so quorum is unaffected).
	for _, p := range []struct{ id, addr string }{{"ghost1", "127.0.0.1:1"}, {"ghost2", "127.0.0.1:2"}} {
		if err := s.Raft().AddNonvoter(raft.ServerID(p.id), raft.ServerAddress(p.addr), 0, 0).Error(); err != nil {
			t.Fatal(err)
		}
	}
	if err := op.RaftRemovePeerByID("ghost1", nil); err != nil {
		t.Fatalf("remove by id: %v", err)
	}
	if err := op.RaftRemovePeerByAddress("127.0.0.1:2", nil); err != nil {
		t.Fatalf("remove by address: %v", err)
	}
	rc, err := op.RaftGetConfiguration(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.Servers) != 1 || rc.Servers[0].Node != "srv1" {
		t.Fatalf("raft configuration after removals: %+v", rc.Servers)
	}
	if err := op.RaftRemovePeerByID("ghost1", nil); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("remove of an unknown peer: %v", err)
	}
	for _, tc := range []struct {
		method, query string
		code          int
	}{
		{nethttp.MethodDelete, "", 400},
		{nethttp.MethodDelete, "?id=a&address=127.0.0.1:1", 400},
		{nethttp.MethodGet, "?id=a", 405},
	} {
		req, _ := nethttp.NewRequest(tc.method, base+"/v1/operator/raft/peer"+tc.query, nil)
		resp, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Fatalf("%s %s: %d, want %d", tc.method, tc.query, resp.StatusCode, tc.code)
		}
	}
}
