package ui

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const evil = `<img src=x onerror=window.pwned=1>`

// fakeAPI answers the API paths the pages read with canned JSON, and
// records the token each call carried.
type fakeAPI struct {
	answers map[string]string // path?query -> JSON; missing -> 404
	tokens  []string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.tokens = append(f.tokens, r.Header.Get("X-Consul-Token"))
	w.Header().Set("X-Consul-Index", "42")
	body, ok := f.answers[r.URL.Path]
	if !ok {
		body, ok = f.answers[r.URL.RequestURI()]
	}
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	io.WriteString(w, body)
}

func newFake() *fakeAPI {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	check := `{"Node":"n1","CheckID":"c1","Name":"` + "\\u003cb\\u003echk" + `","Status":"critical","Output":"` + "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" + `","ServiceID":"web","ServiceName":"web","ModifyIndex":7}`
	return &fakeAPI{answers: map[string]string{
		"/v1/catalog/datacenters": `["dc1","dc2"]`,
		"/v1/catalog/services":    `{"web":["` + "\\u003cimg src=x onerror=window.pwned=1\\u003e" + `"],"db":[]}`,
		"/v1/health/state/any":    `[` + check + `]`,
		"/v1/health/service/web": `[{"Node":{"Node":"n1","Address":"10.0.0.1"},"Service":{"ID":"web","Service":"web","Tags":["` +
			"\\u003cimg src=x onerror=window.pwned=1\\u003e" + `"],"Port":80,"Meta":{"k":"` + "\\u003cimg src=x onerror=window.pwned=1\\u003e" + `"}},"Checks":[` + check + `]}]`,
		"/v1/health/service/db":           `[]`,
		"/v1/health/service/nope":         `[]`,
		"/v1/catalog/node/zz":             `null`,
		"/v1/catalog/nodes":               `[{"Node":"n1","Address":"10.0.0.1"}]`,
		"/v1/agent/members":               `[{"Name":"n1","Addr":"10.0.0.1","Port":8301,"Tags":{"role":"consul","dc":"dc1"},"Status":1}]`,
		"/v1/catalog/node/n1":             `{"Node":{"Node":"n1","Address":"10.0.0.1","Datacenter":"dc1"},"Services":{"web":{"ID":"web","Service":"web","Port":80}}}`,
		"/v1/health/node/n1":              `[` + check + `]`,
		"/v1/kv/":                         `["a/","top"]`,
		"/v1/kv/a/":                       `["a/b","a/bin"]`,
		"/v1/kv/a/b":                      `[{"Key":"a/b","Value":"` + b64(evil) + `","ModifyIndex":9}]`,
		"/v1/kv/a/bin":                    `[{"Key":"a/bin","Value":"` + b64("\xff\xfe\x00x") + `","ModifyIndex":10}]`,
		"/v1/operator/raft/configuration": `{"Servers":[{"ID":"id1","Node":"n1","Address":"10.0.0.1:8300","Leader":true,"Voter":true}],"Index":1}`,
		"/v1/status/leader":               `"10.0.0.1:8300"`,
		"/v1/agent/self":                  `{"Config":{"NodeName":"n1","Datacenter":"dc1","Server":false}}`,
		"/v1/agent/metrics":               `{"Gauges":[{"Name":"cairn_cache_entries","Value":3}],"Counters":[{"Name":"cairn_cache_hits_total","Sum":12}]}`,
	}}
}

// TestPages renders every page from a fake API: status, security headers,
// every value escaped, the token passed through, non-UTF-8 shown as hex.
func TestPages(t *testing.T) {
	api := newFake()
	h, err := New(Config{API: api, Domain: "consul."})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path   string
		status int
		want   []string
	}{
		{"/ui/services", 200, []string{"<title>Services · Cairn</title>", `data-watch="/v1/health/state/any"`, `data-index="42"`,
			"&lt;img src=x onerror=window.pwned=1&gt;", `href="/ui/services/web"`, `data-col="critical" data-label="Critical">1</td>`, `st-critical">critical<`}},
		{"/ui/services?filter=DB", 200, []string{"1 of 2 services", `data-service="db"`}},
		{"/ui/services?sort=critical&dc=dc2", 200, []string{`href="/ui/services/web?dc=dc2"`, `<option value="dc2" selected>`}},
		{"/ui/services/web", 200, []string{"10.0.0.1:80", "meta k", "&lt;script&gt;alert(1)&lt;/script&gt;", "raft index 7", `data-watch="/v1/health/service/web"`}},
		{"/ui/services/nope", 404, []string{"No instances"}},
		{"/ui/nodes", 200, []string{`st-alive">alive<`, `href="/ui/nodes/n1"`}},
		{"/ui/nodes/n1", 200, []string{"Gossip status", "alive", `href="/ui/services/web"`}},
		{"/ui/nodes/zz", 404, []string{"is not in the catalog"}},
		{"/ui/kv/", 200, []string{`href="/ui/kv/a/"`, `href="/ui/kv/top"`, `id="kv-create"`}},
		{"/ui/kv/a/b", 200, []string{`data-cas="9"`, "&lt;img src=x onerror=window.pwned=1&gt;</textarea>", "text"}},
		{"/ui/kv/a/bin", 200, []string{"hex (the value is not UTF-8 text)", "ff fe 00 78"}},
		{"/ui/kv/a/missing", 404, []string{"does not exist"}},
		{"/ui/cluster", 200, []string{`id="leader">10.0.0.1:8300<`, "leader", "<li>dc2</li>"}},
		{"/ui/agent", 200, []string{"Client cache", `<td class="num">12</td>`, `<td class="num">3</td>`, "—"}},
		{"/ui/agent?name=bad..name&type=A", 400, []string{"is not a domain name"}},
		{"/ui/agent?name=web.service.consul&type=MX", 400, []string{"is not one of"}},
		{"/ui/nowhere", 404, []string{"no such page"}},
		{"/ui/services?sort=size", 400, []string{"sort: &#34;size&#34; is not one of name, instances, passing, warning, critical"}},
		{"/ui/services?dc=a%26b", 400, []string{"dc: &#34;a&amp;b&#34; is not a datacenter name"}},
	} {
		r := httptest.NewRequest("GET", tc.path, nil)
		r.Header.Set("X-Consul-Token", "tok-1")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		body := w.Body.String()
		if w.Code != tc.status {
			t.Errorf("%s: status %d, want %d\n%s", tc.path, w.Code, tc.status, body)
			continue
		}
		if got := w.Header().Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'self'") || !strings.Contains(got, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", tc.path, got)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", tc.path)
		}
		if strings.Contains(body, "<img") || strings.Contains(body, "<script>") || strings.Contains(body, "<b>") {
			t.Errorf("%s: unescaped markup in\n%s", tc.path, body)
		}
		if strings.Contains(body, "style=") || strings.Count(body, "<script") != 1 {
			t.Errorf("%s: inline style or extra script", tc.path)
		}
		for _, s := range tc.want {
			if !strings.Contains(body, s) {
				t.Errorf("%s: missing %q in\n%s", tc.path, s, body)
			}
		}
	}
	for _, tok := range api.tokens {
		if tok != "tok-1" {
			t.Fatalf("an API call carried token %q, want the browser's", tok)
		}
	}
}

// TestRoutes: redirects, static files, and the UI refusing writes itself.
func TestRoutes(t *testing.T) {
	h, err := New(Config{API: newFake()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		status       int
		header, want string
	}{
		{"GET", "/ui", 302, "Location", "/ui/services"},
		{"GET", "/ui/?dc=dc2", 302, "Location", "/ui/services?dc=dc2"},
		{"GET", "/ui/static/app.js", 200, "Content-Type", "text/javascript; charset=utf-8"},
		{"GET", "/ui/static/app.css", 200, "Content-Type", "text/css; charset=utf-8"},
		{"GET", "/ui/static/nope.js", 404, "", ""},
		{"POST", "/ui/kv/a/b", 405, "Allow", "GET, HEAD"},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.status || (tc.header != "" && w.Header().Get(tc.header) != tc.want) {
			t.Errorf("%s %s: %d %s=%q, want %d %q", tc.method, tc.path, w.Code, tc.header, w.Header().Get(tc.header), tc.status, tc.want)
		}
	}
}
