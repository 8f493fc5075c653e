package http

import (
	"testing"

	"go.uber.org/zap"
)

// FuzzDecodeBody: no body makes a handler panic or answer 500, and a
// rejected body (400/413) never reaches the backend.
func FuzzDecodeBody(f *testing.F) {
	// The endpoints whose JSON bodies the fuzzer feeds.
	fuzzTargets := [...]string{
		"/v1/agent/service/register",
		"/v1/agent/check/register",
		"/v1/agent/check/update/service:web1",
		"/v1/catalog/register",
		"/v1/catalog/deregister",
		"/v1/query/9b2c9e8a-0000-4000-8000-000000000001",
		"/v1/coordinate/update",
	}
	f.Add(uint8(0), []byte(`{"name":"web","port":80,"check":{"ttl":"10s"}}`))
	f.Add(uint8(1), []byte(`{"Name":"disk","HTTP":"http://127.0.0.1/","Interval":"10s"}`))
	f.Add(uint8(2), []byte(`{"Status":"passing","Output":"ok"}`))
	f.Add(uint8(3), []byte(`{"Node":"n","Address":"a","Service":{"Service":"s"},"Checks":[{"Name":"c"}]}`))
	f.Add(uint8(4), []byte(`{"Node":"n","ServiceID":"s"}`))
	f.Add(uint8(5), []byte(`{"Name":"q","Service":{"Service":"db","Tags":["!v2"],"Failover":{"NearestN":2,"Datacenters":["dc2"]}},"DNS":{"TTL":"10s"},"Template":{"Type":"name_prefix_match"}}`))
	f.Add(uint8(6), []byte(`{"Node":"n","Coord":{"Vec":[0,0,0,0,0,0,0,0],"Error":1.5,"Adjustment":0,"Height":0.00001}}`))
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		b := newTestBackend()
		h := New(b, zap.NewNop())
		// A local service with a check for the update endpoint to hit.
		if w := serve(t, h, "PUT", fuzzTargets[0], []byte(`{"name":"web","id":"web1","check":{"ttl":"1s"}}`)); w.Code != 200 {
			t.Fatalf("seed: %d %s", w.Code, w.Body)
		}
		before := len(b.Calls())
		path := fuzzTargets[int(which)%len(fuzzTargets)]
		w := serve(t, h, "PUT", path, body)
		switch w.Code {
		case 200:
		case 400, 404, 413:
			if w.Code != 404 && len(b.Calls()) != before {
				t.Fatalf("%s: rejected body %q reached the backend: %v", path, body, b.Calls()[before:])
			}
		default:
			t.Fatalf("%s: body %q: status %d %s", path, body, w.Code, w.Body)
		}
	})
}
