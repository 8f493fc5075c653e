package http

import (
	"encoding/json"
	"testing"

	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/structs"
)

// translatingBackend is a testBackend with translate_wan_addrs on.
type translatingBackend struct{ *testBackend }

func (translatingBackend) TranslateWANAddrs() bool { return true }

// TestTranslateWANAddrs: with translate_wan_addrs, answers for another
// datacenter carry the nodes' wan address; the local datacenter's do not.
func TestTranslateWANAddrs(t *testing.T) {
	h := New(translatingBackend{newTestBackend()}, zap.NewNop())
	reg := []byte(`{"Node":"n1","Address":"10.0.0.1","TaggedAddresses":{"lan":"10.0.0.1","wan":"198.51.100.1"},"Service":{"Service":"web","Port":80}}`)
	if w := serve(t, h, "PUT", "/v1/catalog/register", reg); w.Code != 200 {
		t.Fatalf("register: %d %s", w.Code, w.Body)
	}
	for _, tc := range []struct{ path, want string }{
		{"/v1/health/service/web", "10.0.0.1"},
		{"/v1/health/service/web?dc=dc2", "198.51.100.1"},
		{"/v1/catalog/service/web", "10.0.0.1"},
		{"/v1/catalog/service/web?dc=dc2", "198.51.100.1"},
	} {
		w := serve(t, h, "GET", tc.path, nil)
		if w.Code != 200 || w.Header().Get("X-Consul-Translate-Addresses") != "true" {
			t.Fatalf("%s: %d %v", tc.path, w.Code, w.Header())
		}
		var health []structs.CheckServiceNode
		var rows []structs.ServiceNode
		addr := ""
		if json.Unmarshal(w.Body.Bytes(), &health) == nil && len(health) == 1 && health[0].Node != nil {
			addr = health[0].Node.Address
		} else if json.Unmarshal(w.Body.Bytes(), &rows) == nil && len(rows) == 1 {
			addr = rows[0].Address
		}
		if addr != tc.want {
			t.Errorf("%s: address %q, want %q (%s)", tc.path, addr, tc.want, w.Body)
		}
	}
}
