package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cairnd/cairn/cluster/structs"
)

func serve(t *testing.T, h nethttp.Handler, method, path string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, "http://agent"+path, r)
	// httptest.NewRequest cleans nothing, but it parses the target: keep
	// the raw path so KV keys with "//" reach the handler as sent.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	for _, hdr := range []string{"X-Consul-Index", "X-Consul-KnownLeader", "X-Consul-LastContact"} {
		if w.Header().Get(hdr) == "" {
			t.Errorf("%s %s: %d response lacks %s", method, path, w.Code, hdr)
		}
	}
	return w
}

// seeded returns a backend with one local service with a TTL check, a
// key and an event.
func seeded(t *testing.T) (*testBackend, nethttp.Handler) {
	t.Helper()
	b := newTestBackend()
	h := New(b, zaptest.NewLogger(t))
	for _, req := range []struct {
		method, path, body string
	}{
		{"PUT", "/v1/agent/service/register", `{"name":"web","id":"web1","port":80,"tags":["v1"],"check":{"ttl":"10s"}}`},
		{"PUT", "/v1/kv/a/b", "hello"},
		{"PUT", "/v1/event/fire/deploy", "x"},
	} {
		if w := serve(t, h, req.method, req.path, []byte(req.body)); w.Code != 200 {
			t.Fatalf("seed %s: %d %s", req.path, w.Code, w.Body)
		}
	}
	return b, h
}

func TestEndpoints(t *testing.T) {
	cases := []struct {
		method, path, body string
		code               int
		contains           string // in the body
	}{
		{"GET", "/v1/agent/self", "", 200, `"Datacenter":"dc1"`},
		{"GET", "/v1/agent/members", "", 200, `"Name":"node1"`},
		{"GET", "/v1/agent/members?wan=1", "", 200, `"Name":"node1.dc1"`},
		{"GET", "/v1/agent/services", "", 200, `"web1":{"ID":"web1","Service":"web","Tags":["v1"]`},
		{"GET", "/v1/agent/checks", "", 200, `"service:web1"`},
		{"PUT", "/v1/agent/join/10.0.0.2:8301", "", 200, ""},
		{"PUT", "/v1/agent/join/10.0.0.2?wan=true", "", 200, ""},
		{"PUT", "/v1/agent/leave", "", 200, ""},
		{"PUT", "/v1/agent/force-leave/node9?prune", "", 200, ""},
		{"PUT", "/v1/agent/reload", "", 200, ""},
		{"PUT", "/v1/agent/maintenance?enable=true&reason=patch", "", 200, ""},
		{"PUT", "/v1/agent/service/maintenance/web1?enable=false", "", 200, ""},
		{"PUT", "/v1/agent/service/maintenance/nope?enable=true", "", 404, "unknown service"},
		{"PUT", "/v1/agent/check/pass/service:web1?note=ok", "", 200, ""},
		{"PUT", "/v1/agent/check/warn/service:web1", "", 200, ""},
		{"PUT", "/v1/agent/check/fail/service:web1", "", 200, ""},
		{"PUT", "/v1/agent/check/pass/nope", "", 404, "unknown check"},
		{"PUT", "/v1/agent/check/update/service:web1", `{"status":"passing","output":"fine"}`, 200, ""},
		{"PUT", "/v1/agent/check/register", `{"name":"disk","ttl":"30s"}`, 200, ""},
		{"PUT", "/v1/agent/check/deregister/service:web1", "", 200, ""},
		{"PUT", "/v1/agent/check/deregister/nope", "", 404, ""},
		{"PUT", "/v1/agent/service/deregister/web1", "", 200, ""},
		{"PUT", "/v1/agent/service/deregister/nope", "", 404, ""},
		{"GET", "/v1/agent/metrics", "", 200, `"Counters":[{"Name":"cairn_dns_queries_total","Count":1,"Sum":3`},
		{"GET", "/v1/agent/metrics?format=prometheus", "", 200, "cairn_dns_queries_total 3"},
		{"PUT", "/v1/catalog/register", `{"Node":"n2","Address":"10.0.0.2","Service":{"Service":"db","Port":5432}}`, 200, "true"},
		{"PUT", "/v1/catalog/register", `{"node":"n2","address":"10.0.0.2","checks":[{"name":"c","status":"passing"}]}`, 200, "true"},
		{"PUT", "/v1/catalog/deregister", `{"Node":"node1","ServiceID":"web1"}`, 200, "true"},
		{"GET", "/v1/catalog/datacenters", "", 200, `["dc1"]`},
		{"GET", "/v1/catalog/nodes", "", 200, `"Node":"node1"`},
		{"GET", "/v1/catalog/services", "", 200, `{"web":["v1"]}`},
		{"GET", "/v1/catalog/service/web", "", 200, `"ServiceID":"web1"`},
		{"GET", "/v1/catalog/service/web?tag=v2", "", 200, `[]`},
		{"GET", "/v1/catalog/node/node1", "", 200, `"web1":`},
		{"GET", "/v1/catalog/node/nope", "", 200, "null"},
		{"GET", "/v1/health/node/node1", "", 200, `"CheckID":"service:web1"`},
		{"GET", "/v1/health/checks/web", "", 200, `"ServiceName":"web"`},
		{"GET", "/v1/health/service/web", "", 200, `"Checks":[{`},
		{"GET", "/v1/health/service/web?passing", "", 200, `[]`},
		{"GET", "/v1/health/service/web?passing=false", "", 200, `"ID":"web1"`},
		{"GET", "/v1/health/state/critical", "", 200, `"Status":"critical"`},
		{"GET", "/v1/health/state/any", "", 200, `"CheckID"`},
		{"GET", "/v1/kv/a/b", "", 200, `"Value":"aGVsbG8="`},
		{"GET", "/v1/kv//a/b", "", 200, `"Key":"a/b"`},
		{"GET", "/v1/kv/a/b?raw", "", 200, "hello"},
		{"GET", "/v1/kv/a?recurse", "", 200, `"Key":"a/b"`},
		{"GET", "/v1/kv/?keys&separator=/", "", 200, `["a/"]`},
		{"GET", "/v1/kv/missing", "", 404, ""},
		{"GET", "/v1/kv/missing?recurse", "", 404, ""},
		{"GET", "/v1/kv/missing?keys", "", 404, ""},
		{"PUT", "/v1/kv/c?flags=7", "v", 200, "true"},
		{"PUT", "/v1/kv/a/b?cas=1", "v", 200, "false"},
		{"PUT", "/v1/kv/new?cas=0", "v", 200, "true"},
		{"DELETE", "/v1/kv/a/b?cas=1", "", 200, "false"},
		{"DELETE", "/v1/kv/a/b", "", 200, "true"},
		{"DELETE", "/v1/kv/a?recurse", "", 200, "true"},
		{"PUT", "/v1/event/fire/deploy?service=web&tag=v1", "payload", 200, `"Payload":"cGF5bG9hZA=="`},
		{"GET", "/v1/event/list", "", 200, `"Name":"deploy"`},
		{"GET", "/v1/event/list?name=other", "", 200, `[]`},
		{"GET", "/v1/status/leader", "", 200, `"127.0.0.1:8300"`},
		{"GET", "/v1/status/peers", "", 200, `["127.0.0.1:8300"]`},
		{"GET", "/v1/operator/raft/configuration", "", 200, `"ProtocolVersion":"3"`},
		{"GET", "/v1/nope", "", 404, "Unknown API path"},
		{"DELETE", "/v1/catalog/nodes", "", 405, "not allowed"},
		{"GET", "/v1/agent/leave", "", 405, ""},
		{"POST", "/v1/kv/x", "", 405, ""},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			_, h := seeded(t)
			w := serve(t, h, tc.method, tc.path, []byte(tc.body))
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d; body %q", w.Code, tc.code, w.Body)
			}
			if !strings.Contains(w.Body.String(), tc.contains) {
				t.Fatalf("body %q lacks %q", w.Body, tc.contains)
			}
		})
	}
}

// TestBadInputChangesNothing: every malformed request answers 400/413 with
// a one-line reason and makes no Backend call at all.
func TestBadInputChangesNothing(t *testing.T) {
	big := strings.Repeat("x", MaxJSONBody+1)
	cases := []struct {
		method, path, body string
		code               int
	}{
		{"PUT", "/v1/agent/service/register", `{"name":`, 400},
		{"PUT", "/v1/agent/service/register", `{"name":"web","bogus":1}`, 400},
		{"PUT", "/v1/agent/service/register", `{"name":"web","port":"eighty"}`, 400},
		{"PUT", "/v1/agent/service/register", `{"name":"web"} {"name":"x"}`, 400},
		{"PUT", "/v1/agent/service/register", ``, 400},
		{"PUT", "/v1/agent/service/register", `{"name":"` + big + `"}`, 413},
		{"PUT", "/v1/agent/check/register", `{"name":"c","ttl":5}`, 400},
		{"PUT", "/v1/agent/check/update/service:web1", `{"Status":"sleepy"}`, 400},
		{"PUT", "/v1/agent/check/update/service:web1", `{"Status":"passing","Extra":1}`, 400},
		{"PUT", "/v1/agent/maintenance", "", 400},
		{"PUT", "/v1/agent/maintenance?enable=perhaps", "", 400},
		{"PUT", "/v1/agent/service/maintenance/?enable=true", "", 400},
		{"PUT", "/v1/agent/join/", "", 400},
		{"PUT", "/v1/agent/join/x?wan=maybe", "", 400},
		{"PUT", "/v1/agent/force-leave/", "", 400},
		{"PUT", "/v1/catalog/register", `{"Node":"n"}`, 400},
		{"PUT", "/v1/catalog/register", `{"Address":"1.2.3.4"}`, 400},
		{"PUT", "/v1/catalog/register", `{"Node":"n","Address":"a","Service":{"Port":1}}`, 400},
		{"PUT", "/v1/catalog/register", `{"Node":"n","Address":"a","Check":{"Name":"c","Status":"meh"}}`, 400},
		{"PUT", "/v1/catalog/register", `{"Node":"n","Address":"a","Nope":true}`, 400},
		{"PUT", "/v1/catalog/deregister", `{}`, 400},
		{"GET", "/v1/catalog/nodes?wait=abc", "", 400},
		{"GET", "/v1/catalog/nodes?wait=-1s", "", 400},
		{"GET", "/v1/catalog/nodes?index=abc", "", 400},
		{"GET", "/v1/catalog/nodes?stale&consistent", "", 400},
		{"GET", "/v1/catalog/nodes?node-meta=nocolon", "", 400},
		{"GET", "/v1/catalog/service/", "", 400},
		{"GET", "/v1/health/service/web?passing=sometimes", "", 400},
		{"GET", "/v1/health/state/sleepy", "", 400},
		{"GET", "/v1/health/node/", "", 400},
		{"GET", "/v1/kv/a%01b", "", 400},
		{"PUT", "/v1/kv/a%0Ab", "v", 400},
		{"PUT", "/v1/kv/a%ffb", "v", 400},
		{"PUT", "/v1/kv/", "v", 400},
		{"PUT", "/v1/kv/k?flags=-1", "v", 400},
		{"PUT", "/v1/kv/k?cas=x", "v", 400},
		{"PUT", "/v1/kv/k?acquire=", "v", 400},
		{"PUT", "/v1/kv/k?release", "v", 400},
		{"PUT", "/v1/kv/k?acquire=a&release=a", "v", 400},
		{"PUT", "/v1/kv/k?acquire=a&cas=1", "v", 400},
		{"PUT", "/v1/kv/k?acquire=a%01", "v", 400},
		{"PUT", "/v1/session/create", `{"TTL":"soon"}`, 400},
		{"PUT", "/v1/session/create", `{"TTL":"25h"}`, 400},
		{"PUT", "/v1/session/create", `{"Behavior":"keep"}`, 400},
		{"PUT", "/v1/session/create", `{"LockDelay":"2m"}`, 400},
		{"PUT", "/v1/session/create", `{"LockDelay":true}`, 400},
		{"PUT", "/v1/session/create", `{"LockDelay":1.5}`, 400},
		{"PUT", "/v1/session/create", `{"Bogus":1}`, 400},
		{"PUT", "/v1/session/create", `{"NodeChecks":"serfHealth"}`, 400},
		{"PUT", "/v1/session/create", `{"Name":"a\u0001"}`, 400},
		{"PUT", "/v1/session/destroy/", "", 400},
		{"PUT", "/v1/session/renew/", "", 400},
		{"GET", "/v1/session/info/", "", 400},
		{"GET", "/v1/session/node/", "", 400},
		{"GET", "/v1/session/list?index=x", "", 400},
		{"PUT", "/v1/kv/k", strings.Repeat("v", MaxKVValueSize+1), 413},
		{"DELETE", "/v1/kv/k?recurse&cas=1", "", 400},
		{"DELETE", "/v1/kv/", "", 400},
		{"PUT", "/v1/event/fire/", "", 400},
		{"PUT", "/v1/event/fire/e?tag=x", "", 400},
		{"PUT", "/v1/event/fire/e?node=(", "", 400},
		{"PUT", "/v1/event/fire/e", strings.Repeat("p", MaxEventPayload+1), 413},
		{"GET", "/v1/event/list?wait=soon", "", 400},
		{"GET", "/v1/agent/monitor?loglevel=loud", "", 400},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			b, h := seeded(t)
			before := len(b.Calls())
			w := serve(t, h, tc.method, tc.path, []byte(tc.body))
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d; body %q", w.Code, tc.code, w.Body)
			}
			msg := w.Body.String()
			if strings.Count(msg, "\n") != 1 || len(strings.TrimSpace(msg)) == 0 {
				t.Errorf("reason is not one line: %q", msg)
			}
			if calls := b.Calls()[before:]; len(calls) != 0 {
				t.Errorf("bad input reached the backend: %v", calls)
			}
		})
	}
}

func TestQueryOptionsReachRPC(t *testing.T) {
	cases := []struct {
		query string
		want  structs.QueryOptions
	}{
		{"", structs.QueryOptions{}},
		{"?index=5&wait=10s", structs.QueryOptions{MinQueryIndex: 5, MaxQueryTime: 10 * time.Second}},
		{"?index=5&wait=1h", structs.QueryOptions{MinQueryIndex: 5, MaxQueryTime: MaxQueryTime}},
		{"?stale", structs.QueryOptions{AllowStale: true}},
		{"?consistent", structs.QueryOptions{RequireConsistent: true}},
		{"?max_stale=5s", structs.QueryOptions{AllowStale: true, MaxStaleDuration: 5 * time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			b := newTestBackend()
			h := New(b, zap.NewNop())
			if w := serve(t, h, "GET", "/v1/health/service/web"+tc.query, nil); w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			got := b.lastArgs.(*structs.ServiceSpecificRequest)
			if got.QueryOptions != tc.want || got.Datacenter != "dc1" {
				t.Fatalf("args = %+v, want options %+v in dc1", got, tc.want)
			}
		})
	}
	b := newTestBackend()
	h := New(b, zap.NewNop())
	serve(t, h, "GET", "/v1/catalog/service/web?dc=dc2&tag=v1&passing", nil)
	got := b.lastArgs.(*structs.ServiceSpecificRequest)
	if got.Datacenter != "dc2" || got.ServiceTag != "v1" || !got.TagFilter || !got.PassingOnly {
		t.Fatalf("args = %+v", got)
	}
	serve(t, h, "GET", "/v1/kv/pre?keys&separator=/", nil)
	if kr := b.lastArgs.(*structs.KeyRequest); kr.Key != "pre" || kr.Separator != "/" {
		t.Fatalf("key args = %+v", kr)
	}
}

func TestMetaHeaders(t *testing.T) {
	b, h := seeded(t)
	w := serve(t, h, "GET", "/v1/kv/missing", nil)
	if w.Code != 404 || w.Header().Get("X-Consul-Index") != "3" || w.Header().Get("X-Consul-KnownLeader") != "true" ||
		w.Header().Get("X-Consul-LastContact") != "0" || w.Body.Len() != 0 {
		t.Fatalf("KV 404: %d %v %q", w.Code, w.Header(), w.Body)
	}
	b.failWith[structs.MethodCatalogListNodes] = structs.ErrNoLeader
	w = serve(t, h, "GET", "/v1/catalog/nodes", nil)
	if w.Code != 500 || strings.TrimSpace(w.Body.String()) != "no cluster leader" {
		t.Fatalf("RPC error: %d %q", w.Code, w.Body)
	}
	b.failWith[structs.MethodKVSApply] = structs.ErrCASConflict
	if w = serve(t, h, "PUT", "/v1/kv/a/b?cas=9", []byte("v")); w.Code != 200 || strings.TrimSpace(w.Body.String()) != "false" {
		t.Fatalf("CAS conflict error: %d %q", w.Code, w.Body)
	}
}

func TestPanicRecovery(t *testing.T) {
	core, logs := observer.New(zap.ErrorLevel)
	b := newTestBackend()
	b.panicOn = structs.MethodCatalogListNodes
	srv := httptest.NewServer(New(b, zap.New(core)))
	defer srv.Close()
	resp, err := nethttp.Get(srv.URL + "/v1/catalog/nodes")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || resp.Header.Get("X-Consul-Index") == "" {
		t.Fatalf("panic: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if logs.FilterMessage("handler panic").Len() != 1 {
		t.Fatalf("panic not logged: %v", logs.All())
	}
	// The server keeps serving; the backend's lock was released by defer.
	resp, err = nethttp.Get(srv.URL + "/v1/status/leader")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after panic: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestMonitorStreams(t *testing.T) {
	b := newTestBackend()
	srv := httptest.NewServer(New(b, zap.NewNop()))
	defer srv.Close()
	resp, err := nethttp.Get(srv.URL + "/v1/agent/monitor?loglevel=debug")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := "[INFO] agent: one (debug)\n[INFO] agent: two\n"
	if resp.StatusCode != 200 || string(body) != want {
		t.Fatalf("monitor: %d %q, want %q", resp.StatusCode, body, want)
	}
}

func TestEventListBlocks(t *testing.T) {
	b, h := seeded(t)
	w := serve(t, h, "GET", "/v1/event/list", nil)
	idx := w.Header().Get("X-Consul-Index")
	start := time.Now()
	w = serve(t, h, "GET", "/v1/event/list?index="+idx+"&wait=300ms", nil)
	if el := time.Since(start); el < 250*time.Millisecond || w.Header().Get("X-Consul-Index") != idx {
		t.Fatalf("did not block: %v, index %s", el, w.Header().Get("X-Consul-Index"))
	}
	// Fire a new event once the blocking list below has read the events
	// twice: its first look, then a poll from inside its wait.
	read := make(chan struct{})
	b.mu.Lock()
	b.eventsRead = read
	b.mu.Unlock()
	fired := make(chan error, 1)
	go func() {
		<-read
		<-read
		fired <- b.RPC(t.Context(), structs.MethodEventFire,
			&structs.EventFireRequest{Event: structs.UserEvent{ID: "e2", Name: "n"}}, &structs.WriteResponse{})
	}()
	w = serve(t, h, "GET", "/v1/event/list?index="+idx+"&wait=5s", nil)
	if err := <-fired; err != nil {
		t.Fatal(err)
	}
	var events []structs.UserEvent
	if err := json.Unmarshal(w.Body.Bytes(), &events); err != nil || len(events) != 2 ||
		w.Header().Get("X-Consul-Index") == idx {
		t.Fatalf("after new event: %v %+v", err, events)
	}
}

func TestErrorStatus(t *testing.T) {
	for err, want := range map[error]int{
		ErrNotFound:                      404,
		ErrBadRequest:                    400,
		errors.New("boom"):               500,
		badRequest("x"):                  400,
		structs.ErrNoLeader:              500,
		errors.Join(ErrNotFound, io.EOF): 404,
	} {
		if got := errorStatus(err); got != want {
			t.Errorf("errorStatus(%v) = %d, want %d", err, got, want)
		}
	}
}

func TestUUID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := newUUID()
		if len(id) != 36 || id[14] != '4' || !strings.ContainsRune("89ab", rune(id[19])) || seen[id] {
			t.Fatalf("bad uuid %q", id)
		}
		seen[id] = true
	}
}

func TestCheckOutputTruncated(t *testing.T) {
	b, h := seeded(t)
	long := strings.Repeat("o", MaxCheckOutput*2)
	body, _ := json.Marshal(map[string]string{"Status": "warning", "Output": long})
	if w := serve(t, h, "PUT", "/v1/agent/check/update/service:web1", body); w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	out := b.LocalChecks()["service:web1"].Output
	if len(out) > MaxCheckOutput+32 || !strings.HasSuffix(out, "(truncated)") {
		t.Fatalf("output not truncated: %d bytes", len(out))
	}
	if !slices.Contains(b.Calls(), "UpdateTTL service:web1 warning") {
		t.Fatalf("calls %v", b.Calls())
	}
}
