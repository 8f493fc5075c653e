package server

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/acl"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/cluster/testutil"
)

// TestACLGate runs one in-memory server with default deny and checks the
// RPC gate and reply filtering method by method, in-process (the same
// handler a remote call reaches).
func TestACLGate(t *testing.T) {
	const root = "root-secret"
	s := testServer(t, "s1", 1, "", nil, func(c *Config) {
		c.ACL = ACLConfig{Enabled: true, InitialManagement: root}
	})
	rootCtx := acl.ContextWithToken(context.Background(), root)
	testutil.Eventually(t, 30*time.Second, "initial management token", func() error {
		return s.RPC(rootCtx, structs.MethodKVSApply, &structs.KVSRequest{Op: structs.KVSet, DirEnt: structs.DirEntry{Key: "boot"}}, &structs.WriteResponse{})
	})
	var pol structs.ACLPolicy
	if err := s.RPC(rootCtx, structs.MethodACLPolicySet, &structs.ACLPolicySetRequest{Policy: structs.ACLPolicy{Name: "p",
		Rules: `key_prefix "a/" { policy = "write" } service "web" { policy = "write" } node "n1" { policy = "write" } node_prefix "" { policy = "read" }`}}, &pol); err != nil {
		t.Fatal(err)
	}
	var tok structs.ACLToken
	if err := s.RPC(rootCtx, structs.MethodACLTokenSet, &structs.ACLTokenSetRequest{Create: true, Token: structs.ACLToken{Policies: []structs.ACLPolicyLink{{Name: "p"}}}}, &tok); err != nil {
		t.Fatal(err)
	}
	ctx := acl.ContextWithToken(context.Background(), tok.SecretID)
	anon := context.Background()
	for _, c := range []struct {
		name   string
		ctx    context.Context
		method string
		args   any
		reply  any
		denied bool
	}{
		{"kv write in prefix", ctx, structs.MethodKVSApply, &structs.KVSRequest{Op: structs.KVSet, DirEnt: structs.DirEntry{Key: "a/1"}}, &structs.WriteResponse{}, false},
		{"kv write outside", ctx, structs.MethodKVSApply, &structs.KVSRequest{Op: structs.KVSet, DirEnt: structs.DirEntry{Key: "b"}}, &structs.WriteResponse{}, true},
		{"kv delete-tree over the prefix", ctx, structs.MethodKVSApply, &structs.KVSRequest{Op: structs.KVDeleteTree, DirEnt: structs.DirEntry{Key: ""}}, &structs.WriteResponse{}, true},
		{"kv get outside", ctx, structs.MethodKVSGet, &structs.KeyRequest{Key: "boot"}, &structs.IndexedDirEntries{}, true},
		{"anonymous kv write", anon, structs.MethodKVSApply, &structs.KVSRequest{Op: structs.KVSet, DirEnt: structs.DirEntry{Key: "a/2"}}, &structs.WriteResponse{}, true},
		{"register web on n1", ctx, structs.MethodCatalogRegister, &structs.RegisterRequest{Node: "n1", Address: "10.0.0.1", Service: &structs.NodeService{ID: "web", Service: "web"}}, &structs.WriteResponse{}, false},
		{"register db on n1", ctx, structs.MethodCatalogRegister, &structs.RegisterRequest{Node: "n1", Address: "10.0.0.1", Service: &structs.NodeService{ID: "db", Service: "db"}}, &structs.WriteResponse{}, true},
		{"register on n2", ctx, structs.MethodCatalogRegister, &structs.RegisterRequest{Node: "n2", Address: "10.0.0.2"}, &structs.WriteResponse{}, true},
		{"event", ctx, structs.MethodEventFire, &structs.EventFireRequest{Event: structs.UserEvent{Name: "deploy"}}, &structs.WriteResponse{}, true},
		{"raft config", ctx, structs.MethodOperatorRaftConfig, &structs.DCSpecificRequest{}, &structs.RaftConfigurationResponse{}, true},
		{"token list", ctx, structs.MethodACLTokenList, &structs.DCSpecificRequest{}, &structs.IndexedACLTokens{}, true},
		{"token self", ctx, structs.MethodACLTokenRead, &structs.ACLTokenReadRequest{Self: true}, &structs.ACLToken{}, false},
		{"session create without a session rule", ctx, structs.MethodSessionApply, &structs.SessionRequest{Op: structs.SessionCreate, Session: structs.Session{ID: "3d2c1b0a-0000-4000-8000-000000000001", Node: "n1"}}, &structs.WriteResponse{}, true},
		{"lock outside the prefix", ctx, structs.MethodSessionApply, &structs.SessionRequest{Op: structs.SessionLock, DirEnt: structs.DirEntry{Key: "b", Session: "x"}}, &structs.WriteResponse{}, true},
		{"session list (filtered)", ctx, structs.MethodSessionList, &structs.DCSpecificRequest{}, &structs.IndexedSessions{}, false},
		{"txn inside the prefix", ctx, structs.MethodTxnApply, &structs.TxnRequest{Ops: []structs.TxnOp{{KV: &structs.TxnKVOp{Verb: structs.KVSet, DirEnt: structs.DirEntry{Key: "a/t"}}}}}, &structs.TxnResponse{}, false},
		{"txn with one op outside", ctx, structs.MethodTxnApply, &structs.TxnRequest{Ops: []structs.TxnOp{
			{KV: &structs.TxnKVOp{Verb: structs.KVSet, DirEnt: structs.DirEntry{Key: "a/t2"}}},
			{KV: &structs.TxnKVOp{Verb: structs.KVGet, DirEnt: structs.DirEntry{Key: "boot"}}}}}, &structs.TxnResponse{}, true},
		{"status leader", anon, structs.MethodStatusLeader, &structs.DCSpecificRequest{}, new(string), false},
		{"unknown secret", acl.ContextWithToken(anon, "nope"), structs.MethodCatalogListServices, &structs.DCSpecificRequest{}, &structs.IndexedServices{}, true},
	} {
		err := s.RPC(c.ctx, c.method, c.args, c.reply)
		denied := errors.Is(err, structs.ErrPermissionDenied) || errors.Is(err, structs.ErrACLNotFound)
		if denied != c.denied || (err != nil && !denied) {
			t.Errorf("%s: err %v, want denied=%v", c.name, err, c.denied)
		}
	}
	// Root registers db; the token's lists leave it out and say so.
	if err := s.RPC(rootCtx, structs.MethodCatalogRegister, &structs.RegisterRequest{Node: "n1", Address: "10.0.0.1", Service: &structs.NodeService{ID: "db", Service: "db"}}, &structs.WriteResponse{}); err != nil {
		t.Fatal(err)
	}
	var svcs structs.IndexedServices
	if err := s.RPC(ctx, structs.MethodCatalogListServices, &structs.DCSpecificRequest{}, &svcs); err != nil {
		t.Fatal(err)
	}
	if _, ok := svcs.Services["web"]; !ok || len(svcs.Services) != 1 || !svcs.ResultsFilteredByACLs {
		t.Errorf("services as token: %v filtered=%v", svcs.Services, svcs.ResultsFilteredByACLs)
	}
	var ns structs.IndexedNodeServices
	if err := s.RPC(ctx, structs.MethodCatalogNodeServices, &structs.NodeSpecificRequest{Node: "n1"}, &ns); err != nil {
		t.Fatal(err)
	}
	if ns.NodeServices == nil || len(ns.NodeServices.Services) != 1 || !ns.ResultsFilteredByACLs {
		t.Errorf("node services as token: %+v", ns.NodeServices)
	}
	// The store itself still has db (filtering copied, not mutated).
	if _, all := s.State().Services(); len(all) < 2 {
		t.Errorf("state lost services: %v", all)
	}
	var keys structs.IndexedKeyList
	if err := s.RPC(ctx, structs.MethodKVSListKeys, &structs.KeyRequest{}, &keys); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys.Keys, []string{"a/1", "a/t"}) || !keys.ResultsFilteredByACLs {
		t.Errorf("keys as token: %v filtered=%v", keys.Keys, keys.ResultsFilteredByACLs)
	}
	// Updating the policy changes what the token may do at once (the
	// parsed-rules cache is keyed by the policy's ModifyIndex).
	pol.Rules = `key_prefix "b/" { policy = "write" }`
	if err := s.RPC(rootCtx, structs.MethodACLPolicySet, &structs.ACLPolicySetRequest{Policy: pol}, &pol); err != nil {
		t.Fatal(err)
	}
	if err := s.RPC(ctx, structs.MethodKVSApply, &structs.KVSRequest{Op: structs.KVSet, DirEnt: structs.DirEntry{Key: "b/1"}}, &structs.WriteResponse{}); err != nil {
		t.Errorf("write b/1 after policy update: %v", err)
	}
	if err := s.RPC(ctx, structs.MethodKVSApply, &structs.KVSRequest{Op: structs.KVSet, DirEnt: structs.DirEntry{Key: "a/3"}}, &structs.WriteResponse{}); !errors.Is(err, structs.ErrPermissionDenied) {
		t.Errorf("write a/3 after policy update: %v, want denied", err)
	}
	// Bad rules are a 400 naming the rule, and change nothing.
	err := s.RPC(rootCtx, structs.MethodACLPolicySet, &structs.ACLPolicySetRequest{Policy: structs.ACLPolicy{Name: "bad", Rules: `key "x" { policy = "sometimes" }`}}, &structs.ACLPolicy{})
	if !errors.Is(err, structs.ErrInvalidRequest) || s.State().ACLPolicy("", "bad") != nil {
		t.Errorf("bad rules: %v", err)
	}
}
