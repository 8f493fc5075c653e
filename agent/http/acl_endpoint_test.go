package http

import (
	"context"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/acl"
	"github.com/cairnd/cairn/cluster/structs"
)

// aclBackend answers the ACL methods, records the token each call
// carried, and authorizes agent routes with rules.
type aclBackend struct {
	Backend // nil: other methods are not called by these tests
	authz   *acl.Authorizer

	mu     sync.Mutex
	tokens []string
	calls  int
}

func (b *aclBackend) RPC(ctx context.Context, method string, args, reply any) error {
	b.mu.Lock()
	b.calls++
	b.tokens = append(b.tokens, acl.TokenFromContext(ctx))
	b.mu.Unlock()
	switch r := reply.(type) {
	case *structs.ACLPolicy:
		*r = structs.ACLPolicy{ID: "p1", Name: "n"}
	case *structs.ACLToken:
		*r = structs.ACLToken{AccessorID: "a1"}
	case *structs.IndexedKeyList:
		r.Keys, r.ResultsFilteredByACLs = []string{"a"}, true
	case *structs.WriteResponse:
		if method == structs.MethodKVSApply {
			return structs.ErrPermissionDenied
		}
		r.Success = true
	}
	return nil
}

func (b *aclBackend) Datacenter() string { return "dc1" }
func (b *aclBackend) NodeName() string   { return "n1" }
func (b *aclBackend) Authorizer(ctx context.Context) (*acl.Authorizer, error) {
	if acl.TokenFromContext(ctx) == "unknown" {
		return nil, structs.ErrACLNotFound
	}
	return b.authz, nil
}
func (b *aclBackend) Self() map[string]any { return map[string]any{} }

func TestRequestTokenAndACLStatus(t *testing.T) {
	rules, err := acl.Parse(`agent "n1" { policy = "read" }`)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, method, path string
		header             map[string]string
		wantCode           int
		wantToken          string // the token the RPC carried ("-": no RPC)
		wantBody           string
	}{
		{"X-Consul-Token first", "GET", "/v1/kv/a?keys&token=q", map[string]string{"X-Consul-Token": "h", "Authorization": "Bearer b"}, 200, "h", ""},
		{"Bearer next", "GET", "/v1/kv/a?keys&token=q", map[string]string{"Authorization": "Bearer b"}, 200, "b", ""},
		{"query last", "GET", "/v1/kv/a?keys&token=q", nil, 200, "q", ""},
		{"none", "GET", "/v1/kv/a?keys", nil, 200, "", ""},
		{"denied write is 403", "PUT", "/v1/kv/x", nil, 403, "", "Permission denied"},
		{"agent read allowed", "GET", "/v1/agent/self", nil, 200, "-", ""},
		{"agent write denied", "PUT", "/v1/agent/leave", nil, 403, "-", "Permission denied"},
		{"unknown token", "GET", "/v1/agent/self", map[string]string{"X-Consul-Token": "unknown"}, 403, "-", "ACL not found"},
	} {
		b := &aclBackend{authz: acl.New(false, rules)}
		h := New(b, zap.NewNop())
		req := httptest.NewRequest(c.method, "http://agent"+c.path, strings.NewReader("v"))
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != c.wantCode || !strings.Contains(w.Body.String(), c.wantBody) {
			t.Errorf("%s: %d %q, want %d %q", c.name, w.Code, w.Body, c.wantCode, c.wantBody)
		}
		switch {
		case c.wantToken == "-" && b.calls != 0:
			t.Errorf("%s: reached RPC", c.name)
		case c.wantToken != "-" && (len(b.tokens) != 1 || b.tokens[0] != c.wantToken):
			t.Errorf("%s: RPC tokens %q, want %q", c.name, b.tokens, c.wantToken)
		}
		if c.path == "/v1/kv/a?keys" && w.Header().Get("X-Consul-Results-Filtered-By-ACLs") != "true" {
			t.Errorf("%s: no X-Consul-Results-Filtered-By-ACLs", c.name)
		}
	}
}

// FuzzACLBodies: no policy or token body makes a handler panic or answer
// 500, and a rejected body never reaches the backend.
func FuzzACLBodies(f *testing.F) {
	targets := [...]string{"/v1/acl/policy", "/v1/acl/token", "/v1/acl/policy/p1", "/v1/acl/token/a1"}
	f.Add(uint8(0), []byte(`{"Name":"app","Rules":"key_prefix \"app/\" { policy = \"write\" }"}`))
	f.Add(uint8(1), []byte(`{"Description":"d","Policies":[{"Name":"app"}],"Local":false,"CreateTime":"0001-01-01T00:00:00Z"}`))
	f.Add(uint8(2), []byte(`{"ID":"p1","Name":"app","Hash":null,"CreateIndex":0}`))
	f.Add(uint8(3), []byte(`{"Roles":[{"ID":"r"}]}`))
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		b := &aclBackend{authz: acl.AllowAll()}
		h := New(b, zap.NewNop())
		path := targets[int(which)%len(targets)]
		req := httptest.NewRequest(nethttp.MethodPut, "http://agent"+path, strings.NewReader(string(body)))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case 200:
		case 400, 413:
			if b.calls != 0 {
				t.Fatalf("%s: rejected body %q reached the backend", path, body)
			}
		default:
			t.Fatalf("%s: body %q: status %d %s", path, body, w.Code, w.Body)
		}
	})
}

func (b *aclBackend) LocalServices() map[string]*structs.NodeService {
	return map[string]*structs.NodeService{"web1": {ID: "web1", Service: "web"}, "db1": {ID: "db1", Service: "db"}}
}

func (b *aclBackend) LocalChecks() map[string]*structs.HealthCheck {
	return map[string]*structs.HealthCheck{
		"web-ok": {CheckID: "web-ok", Node: "n1", ServiceID: "web1", ServiceName: "web"},
		"db-ok":  {CheckID: "db-ok", Node: "n1", ServiceID: "db1", ServiceName: "db"},
		"mem":    {CheckID: "mem", Node: "n1"},
	}
}

// TestAgentListsFiltered: /v1/agent/services and /checks show what the
// token may read, as Consul's, and say they filtered.
func TestAgentListsFiltered(t *testing.T) {
	rules, err := acl.Parse(`service "web" { policy = "read" }`)
	if err != nil {
		t.Fatal(err)
	}
	h := New(&aclBackend{authz: acl.New(false, rules)}, zap.NewNop())
	for path, want := range map[string][]string{"/v1/agent/services": {`"web1"`}, "/v1/agent/checks": {`"web-ok"`}} {
		w := serve(t, h, "GET", path, nil)
		if w.Code != 200 || w.Header().Get("X-Consul-Results-Filtered-By-ACLs") != "true" {
			t.Fatalf("%s: %d filtered=%q", path, w.Code, w.Header().Get("X-Consul-Results-Filtered-By-ACLs"))
		}
		for _, s := range want {
			if !strings.Contains(w.Body.String(), s) {
				t.Errorf("%s: %s missing from %s", path, s, w.Body)
			}
		}
		for _, s := range []string{`"db1"`, `"db-ok"`, `"mem"`} {
			if strings.Contains(w.Body.String(), s) {
				t.Errorf("%s: %s not filtered: %s", path, s, w.Body)
			}
		}
	}
}
