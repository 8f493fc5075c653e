package agent_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/testutil"
)

// TestNodeIdentityE2E (issue 17 part 4): a server generates a node ID on
// first start, keeps it in its data dir across a restart, and publishes
// it with the lan/wan tagged addresses through the catalog, where
// Prometheus's Consul discovery reads them (Health().Service's
// Node.TaggedAddresses and Node.Meta, Catalog().Service's TaggedAddresses
// and NodeMeta).
func TestNodeIdentityE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real agent process")
	}
	p := agenttest.StartAgent(t, agenttest.Binary(t), "idn", "--server", "--bootstrap-expect", "1",
		"--advertise", "127.0.0.1", "--advertise-wan", "127.0.0.2")
	c, err := api.NewClient(&api.Config{Address: p.HTTPAddr()})
	if err != nil {
		t.Fatal(err)
	}
	wantTagged := map[string]string{"lan": "127.0.0.1", "lan_ipv4": "127.0.0.1", "wan": "127.0.0.2", "wan_ipv4": "127.0.0.2"}
	// identity waits for the catalog to show the node with its ID and
	// tagged addresses, and returns the ID.
	identity := func() string {
		t.Helper()
		var id string
		testutil.Eventually(t, 30*time.Second, "node identity in the catalog", func() error {
			self, err := c.Agent().Self()
			if err != nil {
				return err
			}
			id, _ = self["Config"]["NodeID"].(string)
			if len(id) != 36 || strings.Count(id, "-") != 4 {
				return fmt.Errorf("self NodeID = %q, want a UUID", id)
			}
			n, _, err := c.Catalog().Node("idn", nil)
			if err != nil {
				return err
			}
			if n == nil || n.Node.ID != id || !maps.Equal(n.Node.TaggedAddresses, wantTagged) {
				return fmt.Errorf("catalog node = %+v, want ID %s and %v", n, id, wantTagged)
			}
			entries, _, err := c.Health().Service("consul", "", false, nil)
			if err != nil || len(entries) != 1 {
				return fmt.Errorf("health consul = %d, %v", len(entries), err)
			}
			if !maps.Equal(entries[0].Node.TaggedAddresses, wantTagged) {
				return fmt.Errorf("health node = %+v", entries[0].Node)
			}
			// `members -detailed` shows the serf tags: id is the node ID.
			members, err := c.Agent().Members(false)
			if err != nil || len(members) != 1 || members[0].Tags["id"] != id {
				return fmt.Errorf("members = %+v, %v", members, err)
			}
			rows, _, err := c.Catalog().Service("consul", "", nil)
			if err != nil || len(rows) != 1 || !maps.Equal(rows[0].TaggedAddresses, wantTagged) || rows[0].ID != id {
				return fmt.Errorf("catalog service rows = %+v, %v", rows, err)
			}
			return nil
		})
		return id
	}
	first := identity()
	b, err := os.ReadFile(filepath.Join(p.DataDir, "node-id"))
	if err != nil || strings.TrimSpace(string(b)) != first {
		t.Fatalf("data dir node-id = %q, %v; want %s", b, err, first)
	}
	p.Stop()
	p.Restart()
	if again := identity(); again != first {
		t.Fatalf("node ID after restart = %s, want %s", again, first)
	}
}

// TestNodeIDFlagE2E: --node-id sets the ID of a dev agent.
func TestNodeIDFlagE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real agent process")
	}
	const id = "adf4238a-882b-9ddc-4a9d-5b6758e4159e"
	_, c := devAgent(t, nil, "--node-id", id)
	testutil.Eventually(t, 20*time.Second, "node ID in the catalog", func() error {
		n, _, err := c.Catalog().Node("dev", nil)
		if err != nil {
			return err
		}
		if n == nil || n.Node.ID != id {
			return fmt.Errorf("node = %+v", n)
		}
		return nil
	})
}
