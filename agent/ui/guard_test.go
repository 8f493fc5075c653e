package ui

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestGuardWrites: browser writes need the UI header and the agent's own
// origin; non-browser clients and reads pass untouched.
func TestGuardWrites(t *testing.T) {
	const host = "127.0.0.1:8500"
	for _, tc := range []struct {
		name    string
		method  string
		headers map[string]string
		want    int
	}{
		{"cli put", "PUT", nil, 200},
		{"cli delete", "DELETE", nil, 200},
		{"browser read cross-site", "GET", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, 200},
		{"cross-site form post", "POST", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, 403},
		{"cross-site put with header", "PUT", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", HeaderName: "1"}, 403},
		{"same-site other port", "PUT", map[string]string{"Origin": "http://127.0.0.1:9999", "Sec-Fetch-Site": "same-site", HeaderName: "1"}, 403},
		{"origin only, no header", "PUT", map[string]string{"Origin": "http://" + host}, 403},
		{"sec-fetch only, no header", "DELETE", map[string]string{"Sec-Fetch-Site": "same-origin"}, 403},
		{"opaque origin", "PUT", map[string]string{"Origin": "null", HeaderName: "1"}, 403},
		{"wrong header value", "PUT", map[string]string{"Origin": "http://" + host, "Sec-Fetch-Site": "same-origin", HeaderName: "yes"}, 403},
		{"ui write", "PUT", map[string]string{"Origin": "http://" + host, "Sec-Fetch-Site": "same-origin", HeaderName: "1"}, 200},
		{"ui write, old browser", "PUT", map[string]string{"Origin": "http://" + host, HeaderName: "1"}, 200},
	} {
		reached := false
		h := GuardWrites(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }))
		r := httptest.NewRequest(tc.method, "http://"+host+"/v1/kv/k", nil)
		for k, v := range tc.headers {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want || reached != (tc.want == 200) {
			t.Errorf("%s: status %d (handler reached %v), want %d; body %q", tc.name, w.Code, reached, tc.want, w.Body.String())
		}
	}
}
