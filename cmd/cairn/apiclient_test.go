package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeAgent is the slice of the agent's HTTP API the kv, catalog and maint
// commands use, with Consul's status codes and bodies.
type fakeAgent struct {
	mu    sync.Mutex
	kv    map[string]kvEntry
	index uint64
	maint []string // maintenance requests seen
}

func newFakeAgent(t *testing.T) (*fakeAgent, *apiClient) {
	f := &fakeAgent{kv: map[string]kvEntry{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, newAPIClient(&Globals{HTTPAddr: strings.TrimPrefix(srv.URL, "http://")})
}

func (f *fakeAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/v1/kv/"):
		f.serveKV(w, r, strings.TrimPrefix(p, "/v1/kv/"))
	case p == "/v1/catalog/services":
		_ = json.NewEncoder(w).Encode(map[string][]string{"web": {"v2", "v1"}, "consul": {}})
	case p == "/v1/catalog/nodes":
		_ = json.NewEncoder(w).Encode([]catalogNode{
			{ID: "2d8c1c6e-7f7c-4b8a-9d7e-0a6f1c2b3d4e", Node: "node2", Address: "10.0.0.2", Datacenter: "dc1"},
			{ID: "aaaaaaaa-7f7c-4b8a-9d7e-0a6f1c2b3d4e", Node: "node1", Address: "10.0.0.1", Datacenter: "dc1"},
		})
	case p == "/v1/agent/maintenance" || strings.HasPrefix(p, "/v1/agent/service/maintenance/"):
		if r.Method != http.MethodPut || q.Get("enable") == "" {
			http.Error(w, "Missing value for enable", 400)
			return
		}
		if strings.HasSuffix(p, "/nope") {
			http.Error(w, "unknown service ID", 404)
			return
		}
		f.maint = append(f.maint, p+" "+q.Get("enable")+" "+q.Get("reason"))
	case p == "/v1/agent/checks":
		_ = json.NewEncoder(w).Encode(map[string]agentCheck{
			"_node_maintenance":        {Node: "node1", CheckID: "_node_maintenance", Notes: "patching"},
			"_service_maintenance:web": {Node: "node1", CheckID: "_service_maintenance:web", Notes: "deploy"},
			"service:web":              {Node: "node1", CheckID: "service:web"},
		})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeAgent) serveKV(w http.ResponseWriter, r *http.Request, key string) {
	q := r.URL.Query()
	_, recurse := q["recurse"]
	switch r.Method {
	case http.MethodGet:
		var out []kvEntry
		for k, e := range f.kv {
			if k == key || (recurse && strings.HasPrefix(k, key)) {
				out = append(out, e)
			}
		}
		if len(out) == 0 {
			w.WriteHeader(404)
			return
		}
		_ = json.NewEncoder(w).Encode(out)
	case http.MethodPut:
		body, _ := io.ReadAll(r.Body)
		if cas := q.Get("cas"); cas != "" {
			if idx, _ := strconv.ParseUint(cas, 10, 64); idx != f.kv[key].ModifyIndex {
				_, _ = io.WriteString(w, "false")
				return
			}
		}
		f.index++
		flags, _ := strconv.ParseUint(q.Get("flags"), 10, 64)
		f.kv[key] = kvEntry{Key: key, Value: body, Flags: flags, CreateIndex: f.index, ModifyIndex: f.index}
		_, _ = io.WriteString(w, "true")
	case http.MethodDelete:
		if cas := q.Get("cas"); cas != "" {
			if idx, _ := strconv.ParseUint(cas, 10, 64); idx != f.kv[key].ModifyIndex {
				_, _ = io.WriteString(w, "false")
				return
			}
		}
		for k := range f.kv {
			if k == key || (recurse && strings.HasPrefix(k, key)) {
				delete(f.kv, k)
			}
		}
		_, _ = io.WriteString(w, "true")
	}
}

func ptr[T any](v T) *T { return &v }

func TestKVCommands(t *testing.T) {
	f, api := newFakeAgent(t)
	ctx := context.Background()
	var out, errOut bytes.Buffer
	run := func(name string, fn func() error, wantErr bool, wantOut, wantErrOut string) {
		t.Helper()
		out.Reset()
		errOut.Reset()
		err := fn()
		if wantErr != (err != nil) || (err != nil && !errors.Is(err, exitCode(1))) {
			t.Fatalf("%s: err = %v, want failure %v", name, err, wantErr)
		}
		if out.String() != wantOut || errOut.String() != wantErrOut {
			t.Fatalf("%s: stdout %q stderr %q; want %q / %q", name, out.String(), errOut.String(), wantOut, wantErrOut)
		}
	}
	run("put", func() error {
		return (&KVPutCmd{Key: "/app/a", Value: "one", Flags: 3}).run(ctx, api, nil, &out, &errOut)
	}, false, "Success! Data written to: app/a\n", "")
	run("put stdin", func() error {
		return (&KVPutCmd{Key: "app/b", Value: "-"}).run(ctx, api, strings.NewReader("two"), &out, &errOut)
	}, false, "Success! Data written to: app/b\n", "")
	run("get", func() error { return (&KVGetCmd{Key: "app/a"}).run(ctx, api, &out, &errOut) },
		false, "one\n", "")
	run("get missing", func() error { return (&KVGetCmd{Key: "app/zz"}).run(ctx, api, &out, &errOut) },
		true, "", "Error! No key exists at: app/zz\n")
	run("get detailed", func() error { return (&KVGetCmd{Key: "app/a", Detailed: true}).run(ctx, api, &out, &errOut) },
		false, "CreateIndex      1\nFlags            3\nKey              app/a\nLockIndex        0\nModifyIndex      1\nSession          -\nValue            one\n", "")
	run("cas without index", func() error {
		return (&KVPutCmd{Key: "app/a", Value: "x", CAS: true}).run(ctx, api, nil, &out, &errOut)
	}, true, "", "Must specify --modify-index with --cas!\n")
	run("cas stale", func() error {
		return (&KVPutCmd{Key: "app/a", Value: "x", CAS: true, ModifyIndex: ptr[uint64](7)}).run(ctx, api, nil, &out, &errOut)
	}, true, "", "Error! Did not write to app/a: CAS failed\n")
	run("cas current", func() error {
		return (&KVPutCmd{Key: "app/a", Value: "x", CAS: true, ModifyIndex: ptr[uint64](1)}).run(ctx, api, nil, &out, &errOut)
	}, false, "Success! Data written to: app/a\n", "")
	out.Reset()
	if err := (&KVGetCmd{Key: "app/", Recurse: true}).run(ctx, api, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "app/a:x\n") || !strings.Contains(got, "app/b:two\n") {
		t.Fatalf("recurse output %q", got)
	}
	run("delete cas stale", func() error {
		return (&KVDeleteCmd{Key: "app/b", CAS: true, ModifyIndex: ptr[uint64](99)}).run(ctx, api, &out, &errOut)
	}, true, "", "Error! Did not delete key app/b: CAS failed\n")
	run("delete", func() error { return (&KVDeleteCmd{Key: "app/b"}).run(ctx, api, &out, &errOut) },
		false, "Success! Deleted key: app/b\n", "")
	run("delete recurse", func() error { return (&KVDeleteCmd{Key: "app/", Recurse: true}).run(ctx, api, &out, &errOut) },
		false, "Success! Deleted keys with prefix: app/\n", "")
	run("delete conflicting", func() error {
		return (&KVDeleteCmd{Key: "a", Recurse: true, CAS: true, ModifyIndex: ptr[uint64](1)}).run(ctx, api, &out, &errOut)
	}, true, "", "Cannot specify both --cas and --recurse!\n")
	if len(f.kv) != 0 {
		t.Fatalf("kv left: %v", f.kv)
	}
}

func TestCatalogCommands(t *testing.T) {
	_, api := newFakeAgent(t)
	var out, errOut bytes.Buffer
	if err := (&CatalogServicesCmd{}).run(context.Background(), api, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if out.String() != "consul\nweb\n" {
		t.Fatalf("services: %q", out.String())
	}
	out.Reset()
	if err := (&CatalogServicesCmd{Tags: true}).run(context.Background(), api, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if out.String() != "consul  \nweb     v1,v2\n" {
		t.Fatalf("services --tags: %q", out.String())
	}
	out.Reset()
	if err := (&CatalogNodesCmd{}).run(context.Background(), api, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	want := "Node   ID        Address   DC\nnode1  aaaaaaaa  10.0.0.1  dc1\nnode2  2d8c1c6e  10.0.0.2  dc1\n"
	if out.String() != want {
		t.Fatalf("nodes:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestMaintCommand(t *testing.T) {
	f, api := newFakeAgent(t)
	ctx := context.Background()
	var out, errOut bytes.Buffer
	if err := (&MaintCmd{Enable: true, Reason: "patch"}).run(ctx, api, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if err := (&MaintCmd{Disable: true, Service: "web"}).run(ctx, api, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if out.String() != "Node maintenance is now enabled\nService maintenance is now disabled for \"web\"\n" {
		t.Fatalf("out %q", out.String())
	}
	if strings.Join(f.maint, "|") != "/v1/agent/maintenance true patch|/v1/agent/service/maintenance/web false " {
		t.Fatalf("requests %q", f.maint)
	}
	if err := (&MaintCmd{Enable: true, Service: "nope"}).run(ctx, api, &out, &errOut); !errors.Is(err, exitCode(1)) ||
		!strings.Contains(errOut.String(), "404") {
		t.Fatalf("unknown service: %v %q", err, errOut.String())
	}
	if err := (&MaintCmd{Enable: true, Disable: true}).run(ctx, api, &out, &errOut); !errors.Is(err, exitCode(1)) {
		t.Fatalf("both flags: %v", err)
	}
	out.Reset()
	if err := (&MaintCmd{}).run(ctx, api, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	want := "Node:\n  Name:   node1\n  Reason: patching\n\nService:\n  ID:     web\n  Reason: deploy\n\n"
	if out.String() != want {
		t.Fatalf("list:\n%q\nwant\n%q", out.String(), want)
	}
}

func TestKVPathEscapes(t *testing.T) {
	for in, want := range map[string]string{
		"a/b":        "/v1/kv/a/b",
		"/a":         "/v1/kv/a",
		"sp ace/x?y": "/v1/kv/sp%20ace/x%3Fy",
		"":           "/v1/kv/",
	} {
		if got := kvPath(in); got != want {
			t.Errorf("kvPath(%q) = %q, want %q", in, got, want)
		}
	}
}
