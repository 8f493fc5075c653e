package ui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzUIRequest feeds arbitrary paths and queries (the UI's only input
// from the network besides the API's answers) to the handler: it must
// never panic, never answer 5xx for bad input, never let input through
// unescaped, and always send its security headers.
func FuzzUIRequest(f *testing.F) {
	for _, s := range []string{
		"/ui/services?filter=<script>&sort=critical",
		"/ui/services/%3Cimg%20src=x%3E",
		"/ui/kv/a/%ZZ",
		"/ui/kv/a/b?dc=dc1&dc=x%26y",
		"/ui/nodes/n1?dc=<b>",
		"/ui/agent?name=web.service.consul&type=SRV",
		"/ui/agent?name=" + strings.Repeat("a.", 200) + "&type=A",
		"/ui/static/../ui.go",
		"/ui/services/%3Cxss%3E",
		"/ui/services?filter=%3Cxss%3E",
		"/ui/agent?name=%3Cxss%3E&type=A",
		"/ui/kv/%3Cxss%3E/",
	} {
		f.Add(s)
	}
	api := newFake()
	h, err := New(Config{API: api, Domain: "consul."})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, target string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t#") {
			return // not a request line a client could send
		}
		r, err := http.NewRequest(http.MethodGet, "http://127.0.0.1"+target, nil)
		if err != nil || r.URL.Path == "" {
			return
		}
		api.tokens = nil
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s: %d\n%s", target, w.Code, w.Body.String())
		}
		if w.Header().Get("Content-Security-Policy") != contentSecurityPolicy || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: security headers missing", target)
		}
		if strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") && strings.Contains(strings.ToLower(target), "%3cxss") &&
			strings.Contains(strings.ToLower(w.Body.String()), "<xss") {
			t.Fatalf("%s: input reflected unescaped", target)
		}
	})
}
