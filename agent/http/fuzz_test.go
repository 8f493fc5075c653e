package http

import (
	"net/url"
	"testing"

	"github.com/hashicorp/go-bexpr/grammar"
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
		"/v1/session/create",
		"/v1/query/9b2c9e8a-0000-4000-8000-000000000001",
		"/v1/coordinate/update",
	}
	f.Add(uint8(0), []byte(`{"name":"web","port":80,"check":{"ttl":"10s"}}`))
	f.Add(uint8(1), []byte(`{"Name":"disk","HTTP":"http://127.0.0.1/","Interval":"10s"}`))
	f.Add(uint8(2), []byte(`{"Status":"passing","Output":"ok"}`))
	f.Add(uint8(3), []byte(`{"Node":"n","Address":"a","Service":{"Service":"s"},"Checks":[{"Name":"c"}]}`))
	f.Add(uint8(4), []byte(`{"Node":"n","ServiceID":"s"}`))
	f.Add(uint8(5), []byte(`{"Name":"n","TTL":"30s","LockDelay":15,"Checks":["serfHealth"],"ServiceChecks":[{"ID":"s","Namespace":""}],"Behavior":"delete"}`))
	f.Add(uint8(6), []byte(`{"Name":"q","Service":{"Service":"db","Tags":["!v2"],"Failover":{"NearestN":2,"Datacenters":["dc2"]}},"DNS":{"TTL":"10s"},"Template":{"Type":"name_prefix_match"}}`))
	f.Add(uint8(7), []byte(`{"Node":"n","Coord":{"Vec":[0,0,0,0,0,0,0,0],"Error":1.5,"Adjustment":0,"Height":0.00001}}`))
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

// FuzzFilter: no ?filter= expression makes a filtered endpoint panic or
// answer anything but 200 or 400.
func FuzzFilter(f *testing.F) {
	targets := [...]string{
		"/v1/catalog/nodes", "/v1/catalog/services", "/v1/catalog/service/api-internal",
		"/v1/catalog/node/node-3", "/v1/health/service/api-internal", "/v1/health/state/any",
		"/v1/agent/services", "/v1/agent/checks",
	}
	for i, e := range []string{
		`Meta.env == qa`, `NodeMeta.os == linux`, `ServiceMeta.version == "1.1"`,
		`Service == db`, `any Checks as c { c.Status == critical }`, `Status != passing`,
		`Tags contains "primary"`, `Service matches "^re" and Port > 1`, `(ID is empty) or not (Meta is not empty)`,
		`Checks.Status == critical`, `"dapr" in Checks.ServiceTags and not Checks.Output matches "x"`, "Checks.Notes == `a\"b`",
	} {
		f.Add(uint8(i), e)
	}
	f.Fuzz(func(t *testing.T, which uint8, expr string) {
		_, h := filterFixture(t)
		path := targets[int(which)%len(targets)]
		w := serve(t, h, "GET", path+"?filter="+url.QueryEscape(expr), nil)
		if w.Code != 200 && w.Code != 400 {
			t.Fatalf("%s filter %q: %d %s", path, expr, w.Code, w.Body)
		}
	})
}

// FuzzChecksRewrite: the Checks.<field> rewrite either leaves an
// expression as written or produces one that parses.
func FuzzChecksRewrite(f *testing.F) {
	for _, e := range []string{
		`Checks.Status == critical`, `"dapr" in Checks.ServiceTags`, "Checks.Notes == `a\"b`",
		`not Checks.Output matches "^a\\.b" or Node.Meta["k-1"] == v`, `any Checks as c { c.Status == passing }`,
	} {
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		out := consulChecksSelectors(expr)
		if out == expr {
			return
		}
		if _, err := grammar.Parse("", []byte(out)); err != nil {
			t.Fatalf("%q rewritten to %q, which does not parse: %v", expr, out, err)
		}
	})
}
