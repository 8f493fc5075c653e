package main

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/testutil"
)

// syncTimeout bounds a local registration reaching the catalog
// (anti-entropy runs on registration).
const syncTimeout = 15 * time.Second

// register adds a local service through the agent's HTTP API (the setup,
// not the subject) and waits until `cairn catalog services` lists it.
func register(t *testing.T, a *testAgent, body string) {
	t.Helper()
	api := newAPIClient(&Globals{HTTPAddr: a.HTTPAddr})
	if _, _, err := api.do(context.Background(), http.MethodPut, "/v1/agent/service/register", nil, strings.NewReader(body)); err != nil {
		t.Fatalf("register %s: %v", body, err)
	}
}

// uuidRE masks node IDs.
var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

func TestCatalogCommands(t *testing.T) {
	a := devAgent(t)
	register(t, a, `{"ID": "web1", "Name": "web", "Tags": ["v2", "v1"], "Port": 80}`)
	testutil.Eventually(t, syncTimeout, "web in the catalog", func() error {
		if got := run(t, a.HTTPAddr, &CatalogServicesCmd{}, ""); got.stdout != "consul\nweb\n" {
			return fmt.Errorf("catalog services: %s", got)
		}
		return nil
	})
	check(t, "services --tags", a.HTTPAddr, &CatalogServicesCmd{Tags: true, Stale: true}, "", result{stdout: "consul  \nweb     v1,v2\n"})
	got := check(t, "nodes", a.HTTPAddr, &CatalogNodesCmd{}, "", result{stdout: "~^Node +ID +Address +DC\ncli-test "})
	golden(t, "catalog_nodes", regexp.MustCompile(`  [0-9a-f]{8}  `).ReplaceAllString(got.stdout, "  xxxxxxxx  "))
	got = check(t, "nodes --detailed", a.HTTPAddr, &CatalogNodesCmd{Detailed: true}, "", result{stdout: "~^Node +ID +Address +DC\ncli-test "})
	golden(t, "catalog_nodes_detailed", uuidRE.ReplaceAllString(got.stdout, "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"))

	for _, c := range []struct {
		name string
		addr string
		cmd  runner
		want result
	}{
		{"services other dc", a.HTTPAddr, &CatalogServicesCmd{Datacenter: "dc9"}, result{stderr: "~^Error listing services: Unexpected response code: 5", code: 1}},
		{"nodes other dc", a.HTTPAddr, &CatalogNodesCmd{Datacenter: "dc9"}, result{stderr: "~^Error listing nodes: Unexpected response code: 5", code: 1}},
		{"services agent down", unreachable, &CatalogServicesCmd{}, result{stderr: "~^Error listing services: Error connecting", code: 1}},
		{"nodes agent down", unreachable, &CatalogNodesCmd{}, result{stderr: "~^Error listing nodes: Error connecting", code: 1}},
	} {
		check(t, c.name, c.addr, c.cmd, "", c.want)
	}
}

// TestMaintCommand toggles node and service maintenance and lists it in
// Consul's layout.
func TestMaintCommand(t *testing.T) {
	a := devAgent(t)
	register(t, a, `{"ID": "web1", "Name": "web", "Port": 80}`)
	steps := []struct {
		name string
		cmd  MaintCmd
		want result
	}{
		{"list none", MaintCmd{}, result{}},
		{"node on", MaintCmd{Enable: true, Reason: "patching"}, result{stdout: "Node maintenance is now enabled\n"}},
		{"service on", MaintCmd{Enable: true, Service: "web1", Reason: "deploy"}, result{stdout: "Service maintenance is now enabled for \"web1\"\n"}},
		// The agent's /v1/agent/checks leaves Node empty today (Consul fills
		// it in), so the node's name is not pinned here.
		{"list both", MaintCmd{}, result{stdout: "~^Node:\n  Name:   .*\n  Reason: patching\n\nService:\n  ID:     web1\n  Reason: deploy\n\n$"}},
		{"unknown service", MaintCmd{Enable: true, Service: "nope"}, result{stderr: "~^Error toggling maintenance mode: Unexpected response code: 404", code: 1}},
		{"both flags", MaintCmd{Enable: true, Disable: true}, result{stderr: "Only one of --enable or --disable may be provided\n", code: 1}},
		{"reason without enable", MaintCmd{Disable: true, Reason: "x"}, result{stderr: "Reason may only be provided with --enable\n", code: 1}},
		{"service without toggle", MaintCmd{Service: "web1"}, result{stderr: "--service requires --enable or --disable\n", code: 1}},
		{"node off", MaintCmd{Disable: true}, result{stdout: "Node maintenance is now disabled\n"}},
		{"service off", MaintCmd{Disable: true, Service: "web1"}, result{stdout: "Service maintenance is now disabled for \"web1\"\n"}},
		{"list after", MaintCmd{}, result{}},
	}
	for _, s := range steps {
		check(t, s.name, a.HTTPAddr, &s.cmd, "", s.want)
	}
	check(t, "agent down", unreachable, &MaintCmd{}, "", result{stderr: "~^Error listing maintenance: Error connecting", code: 1})
}
