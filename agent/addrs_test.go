package agent_test

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/cairnd/cairn/agent"
	"github.com/cairnd/cairn/agent/config"
)

// TestPortZeroAdvertisesBoundPorts: a server started with port 0
// everywhere gossips the ports it bound (serf member port, RPC port and
// WAN join port tags), and /v1/agent/self reports the same addresses.
func TestPortZeroAdvertisesBoundPorts(t *testing.T) {
	_, addrs := inProcessAgent(t, t.TempDir(), "ports", func(c *config.Config) { c.Dev = true })
	port := func(addr string) string {
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("address %q: %v", addr, err)
		}
		return p
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	b, err := httpGet(hc, "http://"+addrs.HTTP+"/v1/agent/members")
	if err != nil {
		t.Fatal(err)
	}
	var members []struct {
		Name string
		Port uint16
		Tags map[string]string
	}
	if err := json.Unmarshal(b, &members); err != nil || len(members) != 1 {
		t.Fatalf("members %s: %v", b, err)
	}
	m := members[0]
	if got := strconv.Itoa(int(m.Port)); got != port(addrs.SerfLAN) {
		t.Errorf("serf LAN member port %s, bound %s", got, addrs.SerfLAN)
	}
	if m.Tags["port"] != port(addrs.Server) {
		t.Errorf("gossiped RPC port %q, bound %s", m.Tags["port"], addrs.Server)
	}
	if m.Tags["wan_join_port"] != port(addrs.SerfWAN) {
		t.Errorf("gossiped WAN join port %q, bound %s", m.Tags["wan_join_port"], addrs.SerfWAN)
	}

	b, err = httpGet(hc, "http://"+addrs.HTTP+"/v1/agent/self")
	if err != nil {
		t.Fatal(err)
	}
	var self struct{ Addrs agent.Addrs }
	if err := json.Unmarshal(b, &self); err != nil {
		t.Fatal(err)
	}
	if self.Addrs != addrs {
		t.Errorf("/v1/agent/self Addrs = %+v, want %+v", self.Addrs, addrs)
	}
}
