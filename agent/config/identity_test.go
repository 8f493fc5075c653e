package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIdentityKeys: node_id, disable_host_node_id, advertise_addr_wan and
// translate_wan_addrs load from a file; a bad advertise_addr_wan is
// refused naming the key.
func TestIdentityKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "id.json"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"node_id": "adf4238a-882b-9ddc-4a9d-5b6758e4159e", "disable_host_node_id": false,
		"advertise_addr_wan": "198.51.100.7", "translate_wan_addrs": true}`)
	c, err := Load([]string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeID != "adf4238a-882b-9ddc-4a9d-5b6758e4159e" || c.DisableHostNodeID == nil || *c.DisableHostNodeID ||
		c.AdvertiseAddrWAN != "198.51.100.7" || !c.TranslateWANAddrs || !c.ResolverConfig().TranslateWANAddrs {
		t.Errorf("loaded %+v", c)
	}
	if sc, err := c.ServerConfig(); err != nil || sc.AdvertiseAddrWAN != "198.51.100.7" {
		t.Errorf("server config: %+v, %v", sc.AdvertiseAddrWAN, err)
	}
	write(`{"advertise_addr_wan": "not-an-ip"}`)
	if _, err := Load([]string{dir}, nil); err == nil || !strings.Contains(err.Error(), "advertise_addr_wan") {
		t.Errorf("bad advertise_addr_wan: %v", err)
	}
}
