package http

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap/zaptest"
)

// newCompatClient serves the API from a testBackend over a real socket and
// returns the official Consul client pointed at it.
func newCompatClient(t *testing.T) (*api.Client, *testBackend) {
	t.Helper()
	b := newTestBackend()
	srv := httptest.NewServer(New(b, zaptest.NewLogger(t)))
	t.Cleanup(srv.Close)
	cfg := api.DefaultConfig()
	cfg.Address = strings.TrimPrefix(srv.URL, "http://")
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, b
}

func TestCompatServiceTTLHealth(t *testing.T) {
	c, _ := newCompatClient(t)
	agent, health := c.Agent(), c.Health()
	err := agent.ServiceRegister(&api.AgentServiceRegistration{
		ID: "web1", Name: "web", Tags: []string{"v1"}, Port: 8080,
		Check: &api.AgentServiceCheck{CheckID: "web1-ttl", TTL: "10s"},
	})
	if err != nil {
		t.Fatalf("ServiceRegister: %v", err)
	}
	services, err := agent.Services()
	if err != nil || services["web1"] == nil || services["web1"].Service != "web" || services["web1"].Port != 8080 {
		t.Fatalf("Agent().Services() = %+v, %v", services, err)
	}
	checks, err := agent.Checks()
	if err != nil || checks["web1-ttl"] == nil || checks["web1-ttl"].Status != api.HealthCritical {
		t.Fatalf("Agent().Checks() = %+v, %v", checks, err)
	}

	entries, meta, err := health.Service("web", "", true, nil)
	if err != nil || len(entries) != 0 {
		t.Fatalf("critical service listed as passing: %+v, %v", entries, err)
	}
	if meta.LastIndex == 0 || !meta.KnownLeader {
		t.Errorf("QueryMeta = %+v, want index and leader", meta)
	}

	if err := agent.PassTTL("web1-ttl", "all good"); err != nil {
		t.Fatalf("PassTTL: %v", err)
	}
	entries, _, err = health.Service("web", "", true, nil)
	if err != nil || len(entries) != 1 {
		t.Fatalf("Health().Service passing = %+v, %v", entries, err)
	}
	e := entries[0]
	if e.Node.Node != "node1" || e.Service.ID != "web1" || e.Service.Port != 8080 || len(e.Checks) != 1 ||
		e.Checks[0].Output != "all good" || e.Checks.AggregatedStatus() != api.HealthPassing {
		t.Fatalf("entry = node %+v service %+v checks %+v", e.Node, e.Service, e.Checks)
	}
	tagged, _, err := health.Service("web", "v1", false, nil)
	if err != nil || len(tagged) != 1 {
		t.Fatalf("tag filter: %+v, %v", tagged, err)
	}

	if err := agent.UpdateTTL("web1-ttl", "down", api.HealthCritical); err != nil {
		t.Fatalf("UpdateTTL: %v", err)
	}
	entries, _, err = health.Service("web", "", true, nil)
	if err != nil || len(entries) != 0 {
		t.Fatalf("failed check still passing: %+v, %v", entries, err)
	}
	if err := agent.FailTTL("no-such-check", ""); err == nil {
		t.Fatal("FailTTL of unknown check succeeded")
	}

	catSvc, _, err := c.Catalog().Service("web", "", nil)
	if err != nil || len(catSvc) != 1 || catSvc[0].ServicePort != 8080 {
		t.Fatalf("Catalog().Service = %+v, %v", catSvc, err)
	}
	if err := agent.ServiceDeregister("web1"); err != nil {
		t.Fatalf("ServiceDeregister: %v", err)
	}
	if all, _, _ := health.Service("web", "", false, nil); len(all) != 0 {
		t.Fatalf("deregistered service still listed: %+v", all)
	}
}

func TestCompatCatalog(t *testing.T) {
	c, _ := newCompatClient(t)
	cat := c.Catalog()
	_, err := cat.Register(&api.CatalogRegistration{
		Node: "ext1", Address: "10.0.0.9", NodeMeta: map[string]string{"rack": "a"},
		Service: &api.AgentService{ID: "db1", Service: "db", Port: 5432, Tags: []string{"primary"}},
		Check: &api.AgentCheck{CheckID: "db1-alive", Name: "alive", Status: api.HealthPassing,
			ServiceID: "db1"},
	}, nil)
	if err != nil {
		t.Fatalf("Catalog().Register: %v", err)
	}
	nodes, meta, err := cat.Nodes(nil)
	if err != nil || len(nodes) != 2 || meta.LastIndex == 0 {
		t.Fatalf("Nodes = %+v, %+v, %v", nodes, meta, err)
	}
	services, _, err := cat.Services(nil)
	if err != nil || len(services["db"]) != 1 || services["db"][0] != "primary" {
		t.Fatalf("Services = %+v, %v", services, err)
	}
	node, _, err := cat.Node("ext1", nil)
	if err != nil || node == nil || node.Node.Address != "10.0.0.9" || node.Services["db1"] == nil {
		t.Fatalf("Node = %+v, %v", node, err)
	}
	missing, _, err := cat.Node("nope", nil)
	if err != nil || missing != nil {
		t.Fatalf("Node(nope) = %+v, %v; want nil, nil", missing, err)
	}
	dcs, err := cat.Datacenters()
	if err != nil || len(dcs) != 1 || dcs[0] != "dc1" {
		t.Fatalf("Datacenters = %v, %v", dcs, err)
	}
	checks, _, err := c.Health().State(api.HealthPassing, nil)
	if err != nil || len(checks) != 1 || checks[0].CheckID != "db1-alive" {
		t.Fatalf("Health().State = %+v, %v", checks, err)
	}
	nodeChecks, _, err := c.Health().Node("ext1", nil)
	if err != nil || len(nodeChecks) != 1 {
		t.Fatalf("Health().Node = %+v, %v", nodeChecks, err)
	}
	svcChecks, _, err := c.Health().Checks("db", nil)
	if err != nil || len(svcChecks) != 1 {
		t.Fatalf("Health().Checks = %+v, %v", svcChecks, err)
	}
	if _, err := cat.Deregister(&api.CatalogDeregistration{Node: "ext1"}, nil); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	if nodes, _, _ := cat.Nodes(nil); len(nodes) != 1 {
		t.Fatalf("after deregister nodes = %+v", nodes)
	}
}

func TestCompatKV(t *testing.T) {
	c, _ := newCompatClient(t)
	kv := c.KV()
	if _, err := kv.Put(&api.KVPair{Key: "app/config/a", Value: []byte("1"), Flags: 42}, nil); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if _, err := kv.Put(&api.KVPair{Key: "app/config/b", Value: []byte("2")}, nil); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if _, err := kv.Put(&api.KVPair{Key: "app/other", Value: []byte{0, 1, 2, 255}}, nil); err != nil {
		t.Fatalf("Put binary: %v", err)
	}

	p, meta, err := kv.Get("app/config/a", nil)
	if err != nil || p == nil || string(p.Value) != "1" || p.Flags != 42 || p.ModifyIndex == 0 {
		t.Fatalf("Get = %+v, %v", p, err)
	}
	if meta.LastIndex == 0 {
		t.Error("Get: no X-Consul-Index")
	}
	bin, _, err := kv.Get("app/other", nil)
	if err != nil || string(bin.Value) != "\x00\x01\x02\xff" {
		t.Fatalf("binary value = %+v, %v", bin, err)
	}
	missing, meta, err := kv.Get("app/missing", nil)
	if err != nil || missing != nil || meta.LastIndex == 0 {
		t.Fatalf("Get(missing) = %+v, %+v, %v; want nil with meta", missing, meta, err)
	}

	list, _, err := kv.List("app/", nil)
	if err != nil || len(list) != 3 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	keys, _, err := kv.Keys("app/", "/", nil)
	if err != nil || strings.Join(keys, ",") != "app/config/,app/other" {
		t.Fatalf("Keys = %v, %v", keys, err)
	}

	ok, _, err := kv.CAS(&api.KVPair{Key: "app/config/a", Value: []byte("x"), ModifyIndex: p.ModifyIndex + 100}, nil)
	if err != nil || ok {
		t.Fatalf("CAS with stale index = %v, %v; want false", ok, err)
	}
	ok, _, err = kv.CAS(&api.KVPair{Key: "app/config/a", Value: []byte("x"), ModifyIndex: p.ModifyIndex}, nil)
	if err != nil || !ok {
		t.Fatalf("CAS with current index = %v, %v; want true", ok, err)
	}
	ok, _, err = kv.DeleteCAS(&api.KVPair{Key: "app/config/a", ModifyIndex: 1}, nil)
	if err != nil || ok {
		t.Fatalf("DeleteCAS stale = %v, %v; want false", ok, err)
	}

	if _, err := kv.DeleteTree("app/config/", nil); err != nil {
		t.Fatalf("DeleteTree: %v", err)
	}
	list, _, err = kv.List("app/", nil)
	if err != nil || len(list) != 1 || list[0].Key != "app/other" {
		t.Fatalf("after DeleteTree List = %+v, %v", list, err)
	}
	if _, err := kv.Delete("app/other", nil); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if list, _, _ := kv.List("app/", nil); len(list) != 0 {
		t.Fatalf("after Delete List = %+v", list)
	}
}

func TestCompatStatusAgentEvents(t *testing.T) {
	c, _ := newCompatClient(t)
	leader, err := c.Status().Leader()
	if err != nil || leader != "127.0.0.1:8300" {
		t.Fatalf("Leader = %q, %v", leader, err)
	}
	peers, err := c.Status().Peers()
	if err != nil || len(peers) != 1 {
		t.Fatalf("Peers = %v, %v", peers, err)
	}
	members, err := c.Agent().Members(false)
	if err != nil || len(members) != 1 || members[0].Name != "node1" || members[0].Status != 1 ||
		members[0].Port != 8301 || members[0].Tags["role"] != "consul" || members[0].DelegateCur != 4 {
		t.Fatalf("Members = %+v, %v", members, err)
	}
	self, err := c.Agent().Self()
	if err != nil || self["Config"]["Datacenter"] != "dc1" {
		t.Fatalf("Self = %+v, %v", self, err)
	}
	name, err := c.Agent().NodeName()
	if err != nil || name != "node1" {
		t.Fatalf("NodeName = %q, %v", name, err)
	}
	if err := c.Agent().EnableNodeMaintenance("patching"); err != nil {
		t.Fatalf("EnableNodeMaintenance: %v", err)
	}
	raft, err := c.Operator().RaftGetConfiguration(nil)
	if err != nil || len(raft.Servers) != 1 || !raft.Servers[0].Leader {
		t.Fatalf("RaftGetConfiguration = %+v, %v", raft, err)
	}

	ev := c.Event()
	id, _, err := ev.Fire(&api.UserEvent{Name: "deploy", Payload: []byte("v42"), ServiceFilter: "web"}, nil)
	if err != nil || len(id) != 36 {
		t.Fatalf("Fire = %q, %v", id, err)
	}
	if _, _, err := ev.Fire(&api.UserEvent{Name: "other"}, nil); err != nil {
		t.Fatalf("Fire other: %v", err)
	}
	events, meta, err := ev.List("deploy", nil)
	if err != nil || len(events) != 1 || events[0].ID != id || string(events[0].Payload) != "v42" ||
		events[0].ServiceFilter != "web" {
		t.Fatalf("List = %+v, %v", events, err)
	}
	if meta.LastIndex == 0 || ev.IDToIndex(id) == 0 {
		t.Fatalf("event index = %d", meta.LastIndex)
	}
	all, _, err := ev.List("", nil)
	if err != nil || len(all) != 2 {
		t.Fatalf("List all = %+v, %v", all, err)
	}
}
