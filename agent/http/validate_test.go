package http

import (
	"strings"
	"testing"
)

// Names, IDs, tags and meta keys with control characters or invalid UTF-8,
// and oversized names and keys, are refused with a 400 that names the
// field, and nothing reaches the backend.
func TestInvalidNamesRefused(t *testing.T) {
	long := strings.Repeat("n", 900_000)
	cases := []struct {
		name, method, path, body string
		code                     int
		field                    string // must appear in the one-line reason
	}{
		{"agent service name NUL", "PUT", "/v1/agent/service/register", `{"name":"web\u0000x"}`, 400, "name"},
		{"agent service id newline", "PUT", "/v1/agent/service/register", `{"name":"web","id":"w\n1"}`, 400, "id"},
		{"agent service tag control", "PUT", "/v1/agent/service/register", `{"name":"web","tags":["ok","a\u001bb"]}`, 400, "tags[1]"},
		{"agent service 900 KB name", "PUT", "/v1/agent/service/register", `{"name":"` + long + `"}`, 400, "name"},
		{"agent service raw invalid UTF-8 tag", "PUT", "/v1/agent/service/register", "{\"name\":\"web\",\"tags\":[\"ok\",\"b\xff\"]}", 400, "tags[1]"},
		{"agent service raw invalid UTF-8 meta key", "PUT", "/v1/agent/service/register", "{\"name\":\"web\",\"meta\":{\"k\xc3\":\"v\"}}", 400, "meta.k"},
		{"agent check name newline", "PUT", "/v1/agent/check/register", `{"name":"c\nx","ttl":"10s"}`, 400, "name"},
		{"agent check id NUL", "PUT", "/v1/agent/check/register", `{"name":"c","id":"c\u0000","ttl":"10s"}`, 400, "id"},
		{"catalog node raw invalid UTF-8", "PUT", "/v1/catalog/register", "{\"Node\":\"n\xfe\",\"Address\":\"10.0.0.1\"}", 400, "Node"},
		{"catalog node too long", "PUT", "/v1/catalog/register", `{"Node":"` + strings.Repeat("n", 600) + `","Address":"10.0.0.1"}`, 400, "Node"},
		{"catalog service ID NUL", "PUT", "/v1/catalog/register", `{"Node":"n","Address":"10.0.0.1","Service":{"Service":"web","ID":"a\u0000"}}`, 400, "Service.ID"},
		{"catalog tag newline", "PUT", "/v1/catalog/register", `{"Node":"n","Address":"10.0.0.1","Service":{"Service":"web","Tags":["x\ny"]}}`, 400, "Service.Tags[0]"},
		{"catalog service meta key control", "PUT", "/v1/catalog/register", `{"Node":"n","Address":"10.0.0.1","Service":{"Service":"web","Meta":{"a\tb":"v"}}}`, 400, "Service.Meta key"},
		{"catalog node meta key control", "PUT", "/v1/catalog/register", `{"Node":"n","Address":"10.0.0.1","NodeMeta":{"a\u007fb":"v"}}`, 400, "NodeMeta key"},
		{"catalog check name newline", "PUT", "/v1/catalog/register", `{"Node":"n","Address":"10.0.0.1","Checks":[{"CheckID":"c","Name":"x\ny"}]}`, 400, "Checks[0].Name"},
		{"catalog check ID control", "PUT", "/v1/catalog/register", `{"Node":"n","Address":"10.0.0.1","Check":{"CheckID":"c\u0001"}}`, 400, "Check.CheckID"},
		{"catalog deregister service ID NUL", "PUT", "/v1/catalog/deregister", `{"Node":"n","ServiceID":"s\u0000"}`, 400, "ServiceID"},
		{"1 MiB KV key", "PUT", "/v1/kv/" + strings.Repeat("k", 1<<20), "v", 400, "Key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, h := seeded(t)
			before := len(b.Calls())
			w := serve(t, h, tc.method, tc.path, []byte(tc.body))
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d; body %.200q", w.Code, tc.code, w.Body)
			}
			msg := w.Body.String()
			if !strings.Contains(msg, tc.field) {
				t.Errorf("reason %q does not name the field %s", msg, tc.field)
			}
			if strings.Count(msg, "\n") != 1 || len(msg) > 300 {
				t.Errorf("reason is not one short line: %.300q", msg)
			}
			if calls := b.Calls()[before:]; len(calls) != 0 {
				t.Errorf("bad input reached the backend: %v", calls)
			}
		})
	}
}

func TestJSONFieldAt(t *testing.T) {
	cases := []struct {
		body, at, want string // at: the substring whose first byte is the offset
	}{
		{`{"Node":"nX"}`, "X", "Node"},
		{`{"Node":"n","Service":{"ID":"a","Tags":["x","yX"]}}`, "X", "Service.Tags[1]"},
		{`{"Checks":[{"CheckID":"a"},{"Name":"X"}]}`, "X", "Checks[1].Name"},
		{`{"Meta":{"kX":"v"}}`, "X", "Meta.kX key"},
		{`{"A":[[1,2],["X"]]}`, "X", "A[1][0]"},
		{`{"A":{"B":1},"C":"X"}`, "X", "C"},
		{`["a","X"]`, "X", "[1]"},
		{`{"A":`, "A", "A key"},
	}
	for _, tc := range cases {
		off := strings.Index(tc.body, tc.at)
		if got := jsonFieldAt([]byte(tc.body), off); got != tc.want {
			t.Errorf("jsonFieldAt(%s, %d) = %q, want %q", tc.body, off, got, tc.want)
		}
	}
}

// FuzzInvalidUTF8 feeds arbitrary bodies to the locator: it never panics,
// accepts exactly the valid UTF-8 bodies, and its reason is one line.
func FuzzInvalidUTF8(f *testing.F) {
	for _, s := range []string{`{"Node":"n"}`, "{\"Node\":\"n\xff\"}", "{\"A\":[\"\xc3\"]}", "\xff", `{"A":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		err := invalidUTF8(body)
		if (err == nil) != isValidUTF8(body) {
			t.Fatalf("invalidUTF8 = %v for valid=%v", err, isValidUTF8(body))
		}
		if err != nil && strings.ContainsAny(oneLine(err.Error()), "\n\r") {
			t.Fatalf("multi-line reason %q", err)
		}
	})
}

func isValidUTF8(b []byte) bool { return strings.ToValidUTF8(string(b), "") == string(b) }
