package http

import (
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/cairnd/cairn/cluster/structs"
)

// A write whose outcome is unknown is a 500 that says so, for a plain PUT,
// a CAS (never "false": it may have been applied) and a DELETE.
func TestWriteOutcomeUnknownIs500(t *testing.T) {
	b := newTestBackend()
	b.failWith[structs.MethodKVSApply] = fmt.Errorf("%w: KVS.Apply forwarded to leader 10.0.0.1:8300: leader changed", structs.ErrWriteOutcomeUnknown)
	h := New(b, zaptest.NewLogger(t))
	for _, tc := range []struct{ method, path string }{
		{"PUT", "/v1/kv/k"},
		{"PUT", "/v1/kv/k?cas=0"},
		{"PUT", "/v1/kv/k?cas=7"},
		{"DELETE", "/v1/kv/k?cas=7"},
		{"DELETE", "/v1/kv/k"},
	} {
		w := serve(t, h, tc.method, tc.path, []byte("v"))
		body := w.Body.String()
		if w.Code != 500 || !strings.Contains(body, "outcome unknown: the write may or may not have been applied") {
			t.Errorf("%s %s: %d %q, want 500 saying the outcome is unknown", tc.method, tc.path, w.Code, body)
		}
	}
}
