package server

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/structs"
)

// A raw RPC client (no HTTP API in front) cannot store what the HTTP API
// refuses: each bad write is answered with an "invalid request" error
// naming the field, and nothing is written.
func TestRawRPCWritesValidated(t *testing.T) {
	s := testServer(t, "dev", 1, "", nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := register(ctx, s, "n0", 0); err != nil { // waits out the election
		t.Fatal(err)
	}
	sess, err := rpc.Dial(ctx, s.RPCAddr(), rpc.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	cases := []struct {
		name, method string
		args         any
		field        string
	}{
		{"node NUL", structs.MethodCatalogRegister, &structs.RegisterRequest{Node: "evil\x00", Address: "10.0.0.9"}, "Node"},
		{"service newline", structs.MethodCatalogRegister, &structs.RegisterRequest{Node: "n9", Address: "10.0.0.9",
			Service: &structs.NodeService{ID: "web-9", Service: "web\nevil"}}, "Service.Service"},
		{"900 KB service name", structs.MethodCatalogRegister, &structs.RegisterRequest{Node: "n9", Address: "10.0.0.9",
			Service: &structs.NodeService{ID: "web-9", Service: strings.Repeat("w", 900_000)}}, "Service.Service"},
		{"tag invalid UTF-8", structs.MethodCatalogRegister, &structs.RegisterRequest{Node: "n9", Address: "10.0.0.9",
			Service: &structs.NodeService{ID: "web-9", Service: "web", Tags: []string{"\xff"}}}, "Service.Tags[0]"},
		{"check ID control", structs.MethodCatalogRegister, &structs.RegisterRequest{Node: "n9", Address: "10.0.0.9",
			Check: &structs.HealthCheck{CheckID: "c\x1b", Name: "c"}}, "Check.CheckID"},
		{"deregister NUL", structs.MethodCatalogDeregister, &structs.DeregisterRequest{Node: "n0", ServiceID: "web-0\x00"}, "ServiceID"},
		{"1 MiB KV key", structs.MethodKVSApply, &structs.KVSRequest{Op: structs.KVSet,
			DirEnt: structs.DirEntry{Key: strings.Repeat("k", 1<<20), Value: []byte("v")}}, "Key"},
		{"600 KiB KV value", structs.MethodKVSApply, &structs.KVSRequest{Op: structs.KVSet,
			DirEnt: structs.DirEntry{Key: "big", Value: make([]byte, 600<<10)}}, "Value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out structs.WriteResponse
			err := sess.Call(ctx, tc.method, tc.args, &out)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), "invalid request: "+tc.field+":") {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
			if back := structs.ErrorFromString(err.Error()); !errors.Is(back, structs.ErrInvalidRequest) {
				// The forwarder maps server error texts back this way.
				t.Fatalf("error text %q does not map back to ErrInvalidRequest", err)
			}
		})
	}
	// Nothing of it is in the catalog or the KV store.
	var nodes structs.IndexedNodes
	if err := s.RPC(ctx, structs.MethodCatalogListNodes, &structs.DCSpecificRequest{}, &nodes); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Nodes {
		if n.Node != "n0" && n.Node != "dev" {
			t.Errorf("unexpected node %q in the catalog", n.Node)
		}
	}
	var kv structs.IndexedDirEntries
	if err := s.RPC(ctx, structs.MethodKVSList, &structs.KeyRequest{Key: ""}, &kv); err != nil {
		t.Fatal(err)
	}
	if len(kv.Entries) != 0 {
		t.Errorf("KV holds %d entries after refused writes", len(kv.Entries))
	}
}
