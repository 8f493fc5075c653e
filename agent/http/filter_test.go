package http

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	nethttp "net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-bexpr/grammar"
	"go.uber.org/zap/zaptest"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata")

// filterFixture is a small catalog in the shape of the examples of
// Consul's filtering docs: three nodes with os/env node meta, one service
// (api-internal) on each with version meta and checks in each state, and
// local agent services with env meta.
func filterFixture(t *testing.T) (*testBackend, nethttp.Handler) {
	t.Helper()
	b := newTestBackend()
	h := New(b, zaptest.NewLogger(t))
	reg := func(node, id, addr, os, env, version, tags, status string, port int) string {
		return fmt.Sprintf(`{"Node":%q,"ID":%q,"Address":%q,"NodeMeta":{"os":%q,"env":%q},
			"TaggedAddresses":{"lan":%q,"wan":"198.18.0.%s"},
			"Service":{"ID":"api-internal","Service":"api-internal","Port":%d,"Tags":%s,"Meta":{"version":%q}},
			"Checks":[{"CheckID":"api-alive","Name":"api alive","ServiceID":"api-internal","Status":%q},
			          {"CheckID":"serfHealth","Name":"Serf Health Status","Status":"passing"}]}`,
			node, id, addr, os, env, addr, node[len(node)-1:], port, tags, version, status)
	}
	for _, req := range []struct{ method, path, body string }{
		{"PUT", "/v1/catalog/register", reg("node-1", "11111111-0000-4000-8000-000000000001", "10.0.0.1", "linux", "qa", "1.0", `["primary","v1"]`, "passing", 8080)},
		{"PUT", "/v1/catalog/register", reg("node-2", "22222222-0000-4000-8000-000000000002", "10.0.0.2", "windows", "prod", "1.1", `["v1"]`, "warning", 8080)},
		{"PUT", "/v1/catalog/register", reg("node-3", "33333333-0000-4000-8000-000000000003", "10.0.0.3", "linux", "prod", "1.1", `["secondary","v2"]`, "critical", 9090)},
		{"PUT", "/v1/catalog/register", `{"Node":"node-3","Address":"10.0.0.3","SkipNodeUpdate":true,"Service":{"ID":"db","Service":"db","Port":5432,"Tags":["pg"]}}`},
		{"PUT", "/v1/agent/service/register", `{"ID":"redis1","Name":"redis","Port":6379,"Tags":["primary"],"Meta":{"env":"qa"}}`},
		{"PUT", "/v1/agent/service/register", `{"ID":"redis2","Name":"redis","Port":6380,"Tags":["secondary"],"Meta":{"env":"prod"}}`},
		{"PUT", "/v1/agent/service/register", `{"ID":"web-qa","Name":"web","Port":80,"Meta":{"env":"qa"},"Check":{"CheckID":"web-ttl","TTL":"30s"}}`},
	} {
		if w := serve(t, h, req.method, req.path, []byte(req.body)); w.Code != 200 {
			t.Fatalf("seed %s: %d %s", req.path, w.Code, w.Body)
		}
	}
	return b, h
}

// TestFilterGolden runs ?filter= on every endpoint that takes one (Consul's
// selectors, including the examples of Consul's filtering docs) and
// compares the answer with testdata/filter/<name>.golden.
func TestFilterGolden(t *testing.T) {
	_, h := filterFixture(t)
	cases := []struct{ name, path, filter string }{
		// Consul docs: /v1/agent/services "Meta.env == qa".
		{"agent_services_meta_env", "/v1/agent/services", `Meta.env == qa`},
		{"agent_services_tags", "/v1/agent/services", `Service == redis and Tags contains "primary"`},
		{"agent_checks_status", "/v1/agent/checks", `Status == critical and ServiceName == web`},
		{"catalog_nodes_meta", "/v1/catalog/nodes", `Meta.os == linux and Meta.env != qa`},
		{"catalog_nodes_tagged", "/v1/catalog/nodes", `TaggedAddresses.wan == "198.18.0.2"`},
		{"catalog_services_meta", "/v1/catalog/services", `ServiceMeta.version == "1.1"`},
		{"catalog_services_tag", "/v1/catalog/services", `ServiceTags contains pg`},
		// Consul docs: /v1/catalog/service/api-internal "NodeMeta.os == linux".
		{"catalog_service_nodemeta", "/v1/catalog/service/api-internal", `NodeMeta.os == linux`},
		{"catalog_service_selectors", "/v1/catalog/service/api-internal",
			`ServiceName == "api-internal" and ServicePort == 8080 and Address matches "^10\\.0\\.0\\." and Datacenter == dc1 and ID is not empty`},
		{"catalog_service_no_match", "/v1/catalog/service/api-internal", `ServiceTags contains nope`},
		{"catalog_node_services", "/v1/catalog/node/node-3", `Service == db`},
		{"health_service_node", "/v1/health/service/api-internal", `Node.Node == "node-2" or Service.Tags contains secondary`},
		{"health_service_checks", "/v1/health/service/api-internal", `any Checks as c { c.Status == critical }`},
		// Consul's documented Checks.<field> selectors (Dapr sends the
		// ServiceTags one): a row matches when any of its checks does.
		{"health_service_checks_status", "/v1/health/service/api-internal", `Checks.Status == critical`},
		{"health_service_checks_tags_dapr", "/v1/health/service/api-internal", `Checks.ServiceTags contains primary`},
		{"health_service_checks_not", "/v1/health/service/api-internal", `not (Checks.Status != passing) and "v1" in Service.Tags`},
		{"health_service_meta", "/v1/health/service/api-internal", `Service.Meta.version == "1.0" and Node.Meta.os == linux`},
		{"health_node", "/v1/health/node/node-1", `ServiceName == ""`},
		{"health_checks", "/v1/health/checks/api-internal", `Status != passing`},
		{"health_state", "/v1/health/state/any", `Node == "node-3" and CheckID == "api-alive"`},
		{"bad_syntax", "/v1/catalog/service/api-internal", `ServiceName ==`},
		{"bad_operator", "/v1/health/state/any", `Status === passing`},
		{"bad_selector", "/v1/catalog/nodes", `NoSuchField == x`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(t, h, "GET", tc.path+"?filter="+url.QueryEscape(tc.filter), nil)
			got := fmt.Sprintf("GET %s\nfilter: %s\n%d\n", tc.path, tc.filter, w.Code)
			if w.Code == 200 {
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, w.Body.Bytes(), "", "  "); err != nil {
					t.Fatal(err)
				}
				got += pretty.String() + "\n"
			} else {
				got += w.Body.String()
			}
			path := filepath.Join("testdata", "filter", tc.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -run TestFilterGolden -update writes it)", err)
			}
			if got != string(want) {
				t.Fatalf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestFilterBadExpressionCallsNothing: a bad expression is refused before
// any backend call, on every filtered endpoint.
func TestFilterBadExpressionCallsNothing(t *testing.T) {
	b, h := filterFixture(t)
	before := len(b.Calls())
	for _, path := range []string{
		"/v1/catalog/nodes", "/v1/catalog/services", "/v1/catalog/service/api-internal",
		"/v1/catalog/node/node-1", "/v1/health/service/api-internal", "/v1/health/node/node-1",
		"/v1/health/checks/api-internal", "/v1/health/state/any", "/v1/agent/services", "/v1/agent/checks",
	} {
		w := serve(t, h, "GET", path+"?filter="+url.QueryEscape(`Service ==`), nil)
		if w.Code != 400 || !strings.HasPrefix(w.Body.String(), "Failed to create boolean expression evaluator: ") {
			t.Errorf("%s: %d %q, want 400 with the parser's message", path, w.Code, w.Body)
		}
	}
	if calls := b.Calls()[before:]; len(calls) != 0 {
		t.Fatalf("bad filters reached the backend: %v", calls)
	}
}

// TestFilterConsulDocsExamples replays the three examples of Consul's
// filtering page (api-docs/features/filtering: agent, catalog and health)
// with the docs' data through the official client, and expects the docs'
// filtered answers.
func TestFilterConsulDocsExamples(t *testing.T) {
	c, _ := newCompatClient(t)
	h := c.Agent()
	for _, s := range []struct {
		id   string
		tags []string
		meta map[string]string
		port int
	}{
		{"redis1", []string{"primary", "production"}, map[string]string{"env": "production", "foo": "bar"}, 1234},
		{"redis2", []string{"secondary", "production"}, map[string]string{"env": "production", "foo": "bar"}, 1235},
		{"redis3", []string{"primary", "qa"}, map[string]string{"env": "qa"}, 1234},
	} {
		if err := h.ServiceRegister(&api.AgentServiceRegistration{ID: s.id, Name: "redis", Tags: s.tags, Meta: s.meta, Port: s.port}); err != nil {
			t.Fatal(err)
		}
	}
	if all, err := h.Services(); err != nil || len(all) != 3 {
		t.Fatalf("unfiltered agent services = %d, %v; want 3", len(all), err)
	}
	got, err := h.ServicesWithFilter(`Meta.env == "qa"`)
	if err != nil || len(got) != 1 || got["redis3"] == nil || got["redis3"].Port != 1234 ||
		!slices.Equal(got["redis3"].Tags, []string{"primary", "qa"}) {
		t.Errorf("agent services Meta.env == \"qa\" = %+v, %v; want redis3 alone", got, err)
	}

	for _, n := range []struct {
		id, node, addr string
		meta           map[string]string
		tags           []string
		env            string
	}{
		{"b4f64e8c-5c7d-11e9-bf68-8c8590bd0966", "node-1", "198.18.0.1", map[string]string{"agent": "true", "arch": "i386", "os": "darwin"}, []string{"tag"}, "qa"},
		{"b4faf93a-5c7d-11e9-840d-8c8590bd0966", "node-2", "198.18.0.2", map[string]string{"arch": "arm", "os": "linux"}, []string{"test", "tag"}, "production"},
		{"b4fbe7f4-5c7d-11e9-ac82-8c8590bd0966", "node-4", "198.18.0.4", map[string]string{"arch": "i386", "os": "freebsd"}, []string{}, "qa"},
	} {
		_, err := c.Catalog().Register(&api.CatalogRegistration{ID: n.id, Node: n.node, Address: n.addr, NodeMeta: n.meta,
			Service: &api.AgentService{ID: "api-internal", Service: "api-internal", Tags: n.tags, Port: 9090,
				Meta: map[string]string{"environment": n.env}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	if all, _, err := c.Catalog().Service("api-internal", "", nil); err != nil || len(all) != 3 {
		t.Fatalf("unfiltered catalog service = %d, %v; want 3", len(all), err)
	}
	rows, _, err := c.Catalog().Service("api-internal", "", &api.QueryOptions{Filter: `NodeMeta.os == "linux"`})
	if err != nil || len(rows) != 1 || rows[0].Node != "node-2" || rows[0].ID != "b4faf93a-5c7d-11e9-840d-8c8590bd0966" ||
		rows[0].ServiceMeta["environment"] != "production" || !slices.Equal(rows[0].ServiceTags, []string{"test", "tag"}) {
		t.Errorf("catalog service NodeMeta.os == \"linux\" = %+v, %v; want node-2 alone", rows, err)
	}

	_, err = c.Catalog().Register(&api.CatalogRegistration{Node: "node-1", Address: "198.18.0.1", SkipNodeUpdate: true,
		Checks: api.HealthChecks{
			{CheckID: "node-health", Name: "Node level check", Status: api.HealthCritical},
			{CheckID: "svc-web-health", Name: "Service level check - web", Status: api.HealthWarning, ServiceName: "web"},
		}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checks, _, err := c.Health().Node("node-1", &api.QueryOptions{Filter: `ServiceName != ""`})
	if err != nil || len(checks) != 1 || checks[0].CheckID != "svc-web-health" || checks[0].Status != api.HealthWarning {
		t.Errorf("health node ServiceName != \"\" = %+v, %v; want svc-web-health alone", checks, err)
	}
	all, _, err := c.Health().Node("node-1", nil)
	if err != nil || len(all) != 2 {
		t.Fatalf("unfiltered health node = %+v, %v; want both checks (the filter must be what removed one)", all, err)
	}
}

// TestConsulChecksSelectors pins the rewrite of Consul's Checks.<field>
// selectors, and that every other expression is left exactly as written.
func TestConsulChecksSelectors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`Service.Service == web`, `Service.Service == web`},
		{`any Checks as c { c.Status == critical }`, `any Checks as c { c.Status == critical }`},
		{`Checks.0.Status == passing`, `Checks.0.Status == passing`},
		{`Checks.Status == critical`, `any Checks as cairnCheck { cairnCheck.Status == "critical" }`},
		{`Checks.ServiceTags contains dapr and Checks.ServiceTags contains v1`,
			`(any Checks as cairnCheck { cairnCheck.ServiceTags contains "dapr" }) and (any Checks as cairnCheck { cairnCheck.ServiceTags contains "v1" })`},
		{`"x" not in Checks.ServiceTags or not Node.Meta["rack-1"] matches "^a\\.b"`,
			`(any Checks as cairnCheck { "x" not in cairnCheck.ServiceTags }) or (not (Node.Meta["rack-1"] matches "^a\\.b"))`},
		{"Checks.Output == `say \"hi\"`", "any Checks as cairnCheck { cairnCheck.Output == `say \"hi\"` }"},
		{`Checks.Notes is empty`, `any Checks as cairnCheck { cairnCheck.Notes is empty }`},
		{`Checks.Status ==`, `Checks.Status ==`},
	} {
		got := consulChecksSelectors(tc.in)
		if got != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.in, got, tc.want)
		}
		if got != tc.in {
			if _, err := grammar.Parse("", []byte(got)); err != nil {
				t.Errorf("%s: rewrite %s does not parse: %v", tc.in, got, err)
			}
		}
	}
}
