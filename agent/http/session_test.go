package http

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/cairnd/cairn/cluster/structs"
)

// TestSessionCreateDefaults: what a create body becomes on the wire, with
// Consul's defaults and its two spellings of LockDelay.
func TestSessionCreateDefaults(t *testing.T) {
	serf := []string{structs.SerfCheckID}
	for _, tc := range []struct {
		body string
		want structs.Session
	}{
		{"", structs.Session{Node: "node1", NodeChecks: serf, LockDelay: 15 * time.Second}},
		{`{}`, structs.Session{Node: "node1", NodeChecks: serf, LockDelay: 15 * time.Second}},
		{`{"LockDelay":"1500ms","Name":"n","Node":"other","Behavior":"delete","TTL":"30s"}`,
			structs.Session{Name: "n", Node: "other", NodeChecks: serf, LockDelay: 1500 * time.Millisecond, Behavior: "delete", TTL: "30s"}},
		{`{"LockDelay":15}`, structs.Session{Node: "node1", NodeChecks: serf, LockDelay: 15 * time.Second}},
		{`{"LockDelay":2000000000}`, structs.Session{Node: "node1", NodeChecks: serf, LockDelay: 2 * time.Second}},
		{`{"LockDelay":0}`, structs.Session{Node: "node1", NodeChecks: serf}},
		{`{"NodeChecks":[]}`, structs.Session{Node: "node1", NodeChecks: nil, LockDelay: 15 * time.Second}},
		{`{"Checks":["a","serfHealth"],"NodeChecks":["serfHealth"],"ServiceChecks":[{"ID":"svc","Namespace":""}]}`,
			structs.Session{Node: "node1", NodeChecks: []string{"serfHealth", "a"}, ServiceChecks: []structs.ServiceCheck{{ID: "svc"}}, LockDelay: 15 * time.Second}},
	} {
		b := newTestBackend()
		h := New(b, zaptest.NewLogger(t))
		w := serve(t, h, "PUT", "/v1/session/create", []byte(tc.body))
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", tc.body, w.Code, w.Body)
		}
		var out struct{ ID string }
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(out.ID) {
			t.Fatalf("%s: body %s: %v", tc.body, w.Body, err)
		}
		req := b.lastArgs.(*structs.SessionRequest)
		got := req.Session
		if got.ID != out.ID || req.Op != structs.SessionCreate || req.Datacenter != "dc1" {
			t.Fatalf("%s: request %+v, answered ID %s", tc.body, req, out.ID)
		}
		got.ID = ""
		if len(got.NodeChecks) == 0 {
			got.NodeChecks = nil
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.body, got, tc.want)
		}
	}
}

// TestKVLockParamsReachRPC: ?acquire and ?release become lock ops whose
// answer is the write's Success.
func TestKVLockParamsReachRPC(t *testing.T) {
	for _, tc := range []struct {
		query string
		op    structs.KVOp
	}{{"?acquire=s1", structs.KVLock}, {"?release=s1", structs.KVUnlock}} {
		b := newTestBackend()
		h := New(b, zaptest.NewLogger(t))
		w := serve(t, h, "PUT", "/v1/kv/k"+tc.query, []byte("v"))
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", tc.query, w.Code, w.Body)
		}
		req := b.lastArgs.(*structs.KVSRequest)
		if req.Op != tc.op || req.DirEnt.Session != "s1" || string(req.DirEnt.Value) != "v" {
			t.Fatalf("%s: request %+v", tc.query, req)
		}
	}
}
