package server

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/connlimit"
	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

// TestRequestRateLimit: with limits.request_limits enforcing, reads from
// one client IP beyond the read rate are refused with ErrRateLimited
// (which survives the RPC hop), while another client IP, a server's IP
// (followers forward for many clients) and in-process calls are served;
// writes have their own bucket (unlimited here).
func TestRequestRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server")
	}
	s := testServer(t, "s1", 1, t.TempDir(), nil, func(c *Config) {
		c.RequestLimits = RequestLimits{Mode: connlimit.ModeEnforcing, ReadRate: 2}
	})
	testutil.Eventually(t, 20*time.Second, "a leader", func() error {
		if !s.IsLeader() {
			return errors.New("not yet")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func(local string) *rpc.Session {
		sess, err := rpc.Dial(ctx, s.RPCAddr(), rpc.DialOptions{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sess.Close() })
		return sess
	}
	read := func(sess *rpc.Session) error {
		var out structs.IndexedNodes
		return sess.Call(ctx, structs.MethodCatalogListNodes, &structs.DCSpecificRequest{Datacenter: "dc1"}, &out)
	}
	a := dial("127.0.0.2")
	limited := 0
	for range 20 {
		err := read(a)
		switch {
		case err == nil:
		case errors.Is(err, structs.ErrRateLimited):
			limited++
		default:
			t.Fatalf("read: %v", err)
		}
	}
	if limited < 10 {
		t.Fatalf("%d of 20 back-to-back reads refused at 2 reads/s, want most", limited)
	}
	if err := read(dial("127.0.0.3")); err != nil {
		t.Fatalf("another client IP: %v", err)
	}
	srvIP := dial("127.0.0.1") // the server's own (raft) address
	for i := range 20 {
		if err := read(srvIP); err != nil {
			t.Fatalf("read %d from a server's IP: %v", i, err)
		}
	}
	var out structs.IndexedNodes
	if err := s.RPC(ctx, structs.MethodCatalogListNodes, &structs.DCSpecificRequest{Datacenter: "dc1"}, &out); err != nil {
		t.Fatalf("in-process read: %v", err)
	}
	var w structs.WriteResponse
	for i := range 5 {
		if err := a.Call(ctx, structs.MethodKVSApply, &structs.KVSRequest{Datacenter: "dc1", Op: structs.KVSet,
			DirEnt: structs.DirEntry{Key: "k", Value: []byte{byte(i)}}}, &w); err != nil {
			t.Fatalf("write %d from the read-limited IP: %v", i, err)
		}
	}
}
