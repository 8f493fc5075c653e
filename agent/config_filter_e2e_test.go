package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/testutil"
)

// consulHCL is a Consul-style config dir for the agent: HCL and JSON
// mixed, keys Cairn ignores, a file that is not config.
var consulHCL = map[string]string{
	"10-agent.hcl": `
datacenter = "dc1"
node_meta {
  os  = "linux"
  env = "qa"
}
telemetry {
  prometheus_retention_time = "60s"
}
ports {
  grpc = 8502
}
connect {
  enabled = true
}
ui_config {
  enabled = true
}
service {
  name = "web"
  id   = "web1"
  port = 8080
  tags = ["primary", "v1"]
  meta {
    env = "qa"
  }
  check {
    id  = "web1-ttl"
    ttl = "5m"
  }
}
service {
  name = "redis"
  port = 6379
  tags = ["secondary"]
  meta {
    env = "prod"
  }
  connect {
    sidecar_service {}
  }
}
`,
	"20-api.json": `{
  "service": {"name": "api", "port": 9090, "meta": {"env": "qa"}},
  "performance": {"raft_multiplier": 1}
}`,
	"README.md": "not a config file\n",
}

// TestConsulConfigAndFilterE2E starts a real dev server from a Consul
// config dir written in HCL and JSON, then a client agent joined to it,
// and checks: every ignored key logs exactly one warning, the skipped file
// one warning, the services load; and ?filter= through the official client
// returns what Consul's docs say, on the server and on the client.
func TestConsulConfigAndFilterE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real agent processes")
	}
	dir := t.TempDir()
	for name, body := range consulHCL {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bin := agenttest.Binary(t)
	srv := agenttest.StartAgent(t, bin, "srv", "--dev", "--config-dir", dir)
	if srv.Exited() {
		t.Fatalf("agent did not start:\n%s", srv.Log())
	}
	for _, key := range []string{"telemetry", "ports.grpc", "connect", "services[1].connect", "performance"} {
		if n := strings.Count(srv.Log(), ": "+key+": ignored: Cairn does not implement this Consul key"); n != 1 {
			t.Errorf("%s: %d warnings, want 1", key, n)
		}
	}
	if n := strings.Count(srv.Log(), "skipping file "+filepath.Join(dir, "README.md")+", extension must be .hcl or .json"); n != 1 {
		t.Errorf("README.md: %d warnings, want 1", n)
	}

	sc := apiClient(t, srv.HTTPAddr())
	testutil.Eventually(t, 30*time.Second, "services synced", func() error {
		s, _, err := sc.Catalog().Services(nil)
		if err != nil {
			return err
		}
		for _, want := range []string{"web", "redis", "api"} {
			if _, ok := s[want]; !ok {
				return fmt.Errorf("catalog services %v lack %s", s, want)
			}
		}
		return nil
	})
	cli := agenttest.StartAgent(t, bin, "cli", "--retry-join", srv.SerfAddr())
	cc := apiClient(t, cli.HTTPAddr())
	testutil.Eventually(t, 30*time.Second, "client joined", func() error {
		n, _, err := cc.Catalog().Nodes(nil)
		if err != nil {
			return err
		}
		if len(n) != 2 {
			return fmt.Errorf("nodes %d, want 2", len(n))
		}
		return nil
	})

	// On the server (state store rows) and on the client (cache and
	// forwarder rows), the same answers.
	for _, c := range []struct {
		name string
		api  *api.Client
	}{{"server", sc}, {"client", cc}} {
		t.Run(c.name, func(t *testing.T) { checkFilters(t, c.api) })
	}
	// Agent endpoints: the server holds the config's services.
	as, err := sc.Agent().ServicesWithFilter(`Meta.env == qa`)
	if err != nil || !slices.Equal(keys(as), []string{"api", "web1"}) {
		t.Errorf("agent services Meta.env == qa = %v, %v; want api, web1", keys(as), err)
	}
	ac, err := sc.Agent().ChecksWithFilter(`ServiceName == web and Status == critical`)
	if err != nil || !slices.Equal(keys(ac), []string{"web1-ttl"}) {
		t.Errorf("agent checks = %v, %v; want web1-ttl", keys(ac), err)
	}
	if _, err := sc.Agent().ServicesWithFilter(`Meta.env ==`); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("bad filter: %v, want a 400", err)
	}
}

func checkFilters(t *testing.T, c *api.Client) {
	q := func(f string) *api.QueryOptions { return &api.QueryOptions{Filter: f} }
	// Consul docs, /v1/catalog/service: NodeMeta selects instances.
	rows, _, err := c.Catalog().Service("web", "", q(`NodeMeta.os == linux`))
	if err != nil || len(rows) != 1 || rows[0].ServiceID != "web1" {
		t.Errorf("catalog service NodeMeta.os == linux = %+v, %v", rows, err)
	}
	rows, _, err = c.Catalog().Service("web", "", q(`NodeMeta.os == windows`))
	if err != nil || len(rows) != 0 {
		t.Errorf("catalog service NodeMeta.os == windows = %+v, %v; want none", rows, err)
	}
	svcs, _, err := c.Catalog().Services(q(`ServiceMeta.env == qa`))
	if err != nil || !slices.Equal(keys(svcs), []string{"api", "web"}) {
		t.Errorf("catalog services ServiceMeta.env == qa = %v, %v", keys(svcs), err)
	}
	nodes, _, err := c.Catalog().Nodes(q(`Meta.env == qa`))
	if err != nil || len(nodes) != 1 || nodes[0].Node != "srv" {
		t.Errorf("catalog nodes Meta.env == qa = %+v, %v", nodes, err)
	}
	ns, _, err := c.Catalog().Node("srv", q(`Tags contains secondary`))
	if err != nil || ns == nil || !slices.Equal(keys(ns.Services), []string{"redis"}) {
		t.Errorf("catalog node services = %+v, %v", ns, err)
	}
	entries, _, err := c.Health().Service("web", "", false, q(`Service.Tags contains primary and Node.Node == srv`))
	if err != nil || len(entries) != 1 {
		t.Errorf("health service = %+v, %v", entries, err)
	}
	checks, _, err := c.Health().State("any", q(`ServiceName == web`))
	if err != nil || len(checks) != 1 || checks[0].CheckID != "web1-ttl" {
		t.Errorf("health state any ServiceName == web = %+v, %v", checks, err)
	}
	checks, _, err = c.Health().Node("srv", q(`ServiceID == ""`))
	if err != nil || len(checks) != 1 || checks[0].CheckID != "serfHealth" {
		t.Errorf("health node node checks = %+v, %v", checks, err)
	}
	checks, _, err = c.Health().Checks("web", q(`Status == passing`))
	if err != nil || len(checks) != 0 {
		t.Errorf("health checks web passing = %+v, %v; want none (TTL not yet passed)", checks, err)
	}
	if _, _, err := c.Catalog().Service("web", "", q(`ServiceName = web`)); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("bad filter: %v, want a 400", err)
	}
}

func apiClient(t *testing.T, addr string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: addr, Scheme: "http"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
