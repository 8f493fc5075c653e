package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/cairnd/cairn/agent/agenttest"
	"github.com/cairnd/cairn/cluster/testutil"
)

// devAgent starts a real `cairn agent --dev` process (plus extra args and
// env) and returns it with an official-client handle on its HTTP API, once
// the agent has a leader.
func devAgent(t *testing.T, env []string, args ...string) (*agenttest.Proc, *api.Client) {
	t.Helper()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v) // inherited by the child process
	}
	p := agenttest.StartAgent(t, agenttest.Binary(t), "dev", append([]string{"--dev"}, args...)...)
	c, err := api.NewClient(&api.Config{Address: p.HTTPAddr(), Scheme: "http"})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "leader", func() error {
		l, err := c.Status().Leader()
		if err != nil {
			return err
		}
		if l == "" {
			return fmt.Errorf("no leader yet")
		}
		return nil
	})
	return p, c
}

// TestAPIE2E drives a real dev agent with github.com/hashicorp/consul/api
// (issue 7): services with TTL and HTTP checks, health filtering, KV,
// blocking queries, events, members and status.
func TestAPIE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real agent process")
	}
	_, c := devAgent(t, nil)
	check := newStatusServer(t)
	// Steps in order, on the one agent: later ones read what earlier ones
	// wrote.
	runSteps(t, c, []step[*api.Client]{
		{"ServiceChecks", func(t *testing.T, c *api.Client) { testAPIServiceChecks(t, c, check) }},
		{"KV", testAPIKV},
		{"KVBlockingGet", testAPIKVBlockingGet},
		{"KVDeleteTree", testAPIKVDeleteTree},
		{"Events", testAPIEvents},
		{"MembersAndStatus", testAPIMembersAndStatus},
		{"ServiceDeregister", testAPIServiceDeregister},
	})
}

// apiService is the service TestAPIE2E registers, as web1.
const apiService = "web"

// statusServer is an HTTP check target answering the status last set.
type statusServer struct {
	*httptest.Server
	mu     sync.Mutex
	status int
}

// newStatusServer starts a statusServer answering 200, closed on cleanup.
func newStatusServer(t *testing.T) *statusServer {
	s := &statusServer{status: nethttp.StatusOK}
	s.Server = httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		w.WriteHeader(s.status)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *statusServer) set(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

// testAPIServiceChecks registers web1 with a TTL check and an HTTP check
// on check, and follows health filtering as each passes and fails.
func testAPIServiceChecks(t *testing.T, c *api.Client, check *statusServer) {
	ag := c.Agent()
	err := ag.ServiceRegister(&api.AgentServiceRegistration{
		ID: "web1", Name: apiService, Port: 8080, Tags: []string{"v1"},
		Checks: api.AgentServiceChecks{
			{CheckID: "web1-ttl", Name: "ttl", TTL: "30s"},
			{CheckID: "web1-http", Name: "http", HTTP: check.URL, Interval: "1s", Timeout: "1s"},
		},
	})
	if err != nil {
		t.Fatalf("ServiceRegister: %v", err)
	}
	apiServices, err := ag.Services()
	if err != nil || apiServices["web1"] == nil || apiServices["web1"].Port != 8080 {
		t.Fatalf("agent services = %v, %v", apiServices, err)
	}

	passing := func() ([]*api.ServiceEntry, error) {
		entries, _, err := c.Health().Service(apiService, "", true, nil)
		return entries, err
	}
	waitPassing := func(what string, want int) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, what, func() error {
			e, err := passing()
			if err != nil {
				return err
			}
			if len(e) != want {
				return fmt.Errorf("%d passing, want %d", len(e), want)
			}
			return nil
		})
	}
	// Before the TTL passes the service is critical, so passing-only hides it.
	if e, err := passing(); err != nil || len(e) != 0 {
		t.Fatalf("passing before TTL pass = %v, %v (want none)", e, err)
	}
	if err := ag.UpdateTTL("web1-ttl", "all good", api.HealthPassing); err != nil {
		t.Fatalf("UpdateTTL pass: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "web1 passing in health", func() error {
		e, err := passing()
		if err != nil {
			return err
		}
		if len(e) != 1 || e[0].Service.ID != "web1" {
			return fmt.Errorf("passing entries = %d", len(e))
		}
		for _, ch := range e[0].Checks {
			if ch.Status != api.HealthPassing {
				return fmt.Errorf("check %s is %s", ch.CheckID, ch.Status)
			}
		}
		return nil
	})

	// The HTTP check failing takes it out too; recovering brings it back.
	check.set(nethttp.StatusServiceUnavailable)
	waitPassing("web1 dropped after HTTP check fails", 0)
	check.set(nethttp.StatusOK)
	waitPassing("web1 back after HTTP check recovers", 1)

	// Failing the TTL drops it from passing-only results, and the
	// unfiltered read shows it critical.
	if err := ag.UpdateTTL("web1-ttl", "broken", api.HealthCritical); err != nil {
		t.Fatalf("UpdateTTL fail: %v", err)
	}
	waitPassing("web1 dropped after TTL fail", 0)
	all, _, err := c.Health().Service(apiService, "", false, nil)
	if err != nil || len(all) != 1 || all[0].Checks.AggregatedStatus() != api.HealthCritical {
		t.Fatalf("unfiltered health = %v, %v", all, err)
	}
	for _, ch := range all[0].Checks {
		if ch.CheckID == "web1-ttl" && ch.Output != "broken" {
			t.Errorf("TTL output = %q, want %q", ch.Output, "broken")
		}
	}
}

// testAPIKV: put, get, list, keys and CAS.
func testAPIKV(t *testing.T, c *api.Client) {
	kv := c.KV()
	for _, k := range []string{"app/a", "app/b", "app/sub/c", "other"} {
		if _, err := kv.Put(&api.KVPair{Key: k, Value: []byte("v-" + k), Flags: 7}, nil); err != nil {
			t.Fatalf("Put %s: %v", k, err)
		}
	}
	p, _, err := kv.Get("app/a", nil)
	if err != nil || p == nil || string(p.Value) != "v-app/a" || p.Flags != 7 {
		t.Fatalf("Get app/a = %+v, %v", p, err)
	}
	if p, _, err := kv.Get("missing", nil); err != nil || p != nil {
		t.Fatalf("Get missing = %+v, %v", p, err)
	}
	list, _, err := kv.List("app/", nil)
	if err != nil || len(list) != 3 {
		t.Fatalf("List app/ = %d, %v", len(list), err)
	}
	keys, _, err := kv.Keys("app/", "/", nil)
	if err != nil || strings.Join(keys, ",") != "app/a,app/b,app/sub/" {
		t.Fatalf("Keys app/ / = %v, %v", keys, err)
	}
	// CAS: stale index loses, current index wins.
	stale := p.ModifyIndex
	if _, err := kv.Put(&api.KVPair{Key: "app/a", Value: []byte("v2")}, nil); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := kv.CAS(&api.KVPair{Key: "app/a", Value: []byte("lost"), ModifyIndex: stale}, nil); err != nil || ok {
		t.Fatalf("CAS with stale index = %v, %v (want false)", ok, err)
	}
	cur, _, _ := kv.Get("app/a", nil)
	if cur == nil || string(cur.Value) != "v2" {
		t.Fatalf("after losing CAS: %+v", cur)
	}
	if ok, _, err := kv.CAS(&api.KVPair{Key: "app/a", Value: []byte("v3"), ModifyIndex: cur.ModifyIndex}, nil); err != nil || !ok {
		t.Fatalf("CAS with current index = %v, %v (want true)", ok, err)
	}
	// cas=0 creates only if absent.
	if ok, _, err := kv.CAS(&api.KVPair{Key: "app/a", Value: []byte("x"), ModifyIndex: 0}, nil); err != nil || ok {
		t.Fatalf("CAS(0) on existing key = %v, %v (want false)", ok, err)
	}
}

// testAPIKVBlockingGet: a blocking Get stays parked, then wakes on change.
func testAPIKVBlockingGet(t *testing.T, c *api.Client) {
	kv := c.KV()
	// Blocking Get wakes on change.
	cur, meta, err := kv.Get("app/b", nil)
	if err != nil || cur == nil {
		t.Fatalf("Get app/b: %v", err)
	}
	type res struct {
		p   *api.KVPair
		idx uint64
		err error
		dur time.Duration
	}
	ch := make(chan res, 1)
	go func() {
		start := time.Now()
		p, m, err := kv.Get("app/b", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 20 * time.Second})
		r := res{p: p, err: err, dur: time.Since(start)}
		if m != nil {
			r.idx = m.LastIndex
		}
		ch <- r
	}()
	select { // it must stay parked while nothing changes
	case r := <-ch:
		t.Fatalf("blocking Get returned before any change: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := kv.Put(&api.KVPair{Key: "app/b", Value: []byte("changed")}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		if r.err != nil || r.p == nil || string(r.p.Value) != "changed" || r.idx <= meta.LastIndex {
			t.Fatalf("blocking Get woke with %+v (index before %d)", r, meta.LastIndex)
		}
		if r.dur > 10*time.Second {
			t.Fatalf("blocking Get took %v to wake", r.dur)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("blocking Get did not wake on change")
	}
}

// testAPIKVDeleteTree removes app/ and nothing else.
func testAPIKVDeleteTree(t *testing.T, c *api.Client) {
	kv := c.KV()
	// Delete tree.
	if _, err := kv.DeleteTree("app/", nil); err != nil {
		t.Fatalf("DeleteTree: %v", err)
	}
	if list, _, err := kv.List("app/", nil); err != nil || len(list) != 0 {
		t.Fatalf("List after DeleteTree = %d, %v", len(list), err)
	}
	if p, _, err := kv.Get("other", nil); err != nil || p == nil {
		t.Fatalf("DeleteTree app/ removed other: %+v, %v", p, err)
	}
}

// testAPIEvents: a fired event shows in the event list with its payload.
func testAPIEvents(t *testing.T, c *api.Client) {
	id, _, err := c.Event().Fire(&api.UserEvent{Name: "deploy", Payload: []byte("v42")}, nil)
	if err != nil || id == "" {
		t.Fatalf("Fire: %q, %v", id, err)
	}
	testutil.Eventually(t, 10*time.Second, "event in list", func() error {
		evs, _, err := c.Event().List("deploy", nil)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if e.ID == id {
				if string(e.Payload) != "v42" {
					return fmt.Errorf("payload %q", e.Payload)
				}
				return nil
			}
		}
		return fmt.Errorf("%d events, %s not among them", len(evs), id)
	})
}

// testAPIMembersAndStatus: the dev agent is the one member, leader and peer.
func testAPIMembersAndStatus(t *testing.T, c *api.Client) {
	ag := c.Agent()
	members, err := ag.Members(false)
	if err != nil || len(members) != 1 || members[0].Name != "dev" || members[0].Status != 1 {
		t.Fatalf("Members = %+v, %v", members, err)
	}
	leader, err := c.Status().Leader()
	if err != nil || leader == "" {
		t.Fatalf("Leader = %q, %v", leader, err)
	}
	peers, err := c.Status().Peers()
	if err != nil || len(peers) != 1 || peers[0] != leader {
		t.Fatalf("Peers = %v, %v (leader %q)", peers, err, leader)
	}
}

// testAPIServiceDeregister: deregistering web1 removes it from health.
func testAPIServiceDeregister(t *testing.T, c *api.Client) {
	ag := c.Agent()
	// Deregistering the service removes it from health.
	if err := ag.ServiceDeregister("web1"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "web1 gone from catalog", func() error {
		e, _, err := c.Health().Service(apiService, "", false, nil)
		if err != nil {
			return err
		}
		if len(e) != 0 {
			return fmt.Errorf("%d entries", len(e))
		}
		return nil
	})
}

// TestAPIE2EBadInput: malformed JSON, unknown fields, oversized bodies and
// a bad ?wait against the real agent get 400/413 and change nothing.
func TestAPIE2EBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real agent process")
	}
	p, c := devAgent(t, nil)
	base := "http://" + p.HTTPAddr()
	if _, err := c.KV().Put(&api.KVPair{Key: "keep", Value: []byte("orig")}, nil); err != nil {
		t.Fatal(err)
	}
	snapshot := func() string {
		svcs, err := c.Agent().Services()
		if err != nil {
			t.Fatal(err)
		}
		cat, _, err := c.Catalog().Services(nil)
		if err != nil {
			t.Fatal(err)
		}
		pairs, _, err := c.KV().List("", nil)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "agent=%d catalog=%v kv:", len(svcs), cat)
		for _, p := range pairs {
			fmt.Fprintf(&b, " %s=%q@%d", p.Key, p.Value, p.ModifyIndex)
		}
		return b.String()
	}
	before := snapshot()

	big := strings.Repeat("x", 2<<20)
	cases := []struct {
		method, path, body string
		want               int
	}{
		{"PUT", "/v1/agent/service/register", `{"Name":"bad",`, 400},
		{"PUT", "/v1/agent/service/register", `{"Name":"bad","Bogus":1}`, 400},
		{"PUT", "/v1/agent/service/register", `{"Name":"` + big + `"}`, 413},
		{"PUT", "/v1/agent/check/register", `{"Name":"c","TTL":`, 400},
		{"PUT", "/v1/catalog/register", `{"Node":"n","Address":"1.2.3.4","Nope":true}`, 400},
		{"PUT", "/v1/catalog/register", `not json`, 400},
		{"PUT", "/v1/catalog/register", `{"Node":"n","Address":"` + big + `"}`, 413},
		{"PUT", "/v1/kv/keep", big, 413},
		{"GET", "/v1/kv/keep?index=1&wait=banana", "", 400},
		{"GET", "/v1/catalog/services?index=1&wait=-5s", "", 400},
		{"GET", "/v1/health/service/web?wait=10parsecs&index=1", "", 400},
		{"PUT", "/v1/event/fire/e", strings.Repeat("p", 4096), 413},
	}
	hc := &nethttp.Client{Timeout: 10 * time.Second}
	for _, tc := range cases {
		req, err := nethttp.NewRequestWithContext(context.Background(), tc.method, base+tc.path, bytes.NewBufferString(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		short := tc.body
		if len(short) > 40 {
			short = short[:40] + "…"
		}
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s %q = %d %q, want %d", tc.method, tc.path, short, resp.StatusCode, msg, tc.want)
		} else if len(bytes.TrimSpace(msg)) == 0 {
			t.Errorf("%s %s: %d with an empty reason", tc.method, tc.path, resp.StatusCode)
		}
	}
	if after := snapshot(); after != before {
		t.Fatalf("bad input changed state:\nbefore %s\nafter  %s", before, after)
	}
	evs, _, err := c.Event().List("e", nil)
	if err != nil || len(evs) != 0 {
		t.Fatalf("oversized event fired anyway: %v, %v", evs, err)
	}
}

// TestAPIE2EAntiEntropy: a service the agent owns, removed from the
// catalog behind its back with /v1/catalog/deregister, is put back by the
// agent's next full anti-entropy sync. The periodic full sync is 1 min (+
// stagger) by default, so the test shortens it with CAIRN_AE_INTERVAL (a
// test-only override read in agent.startSync); the restore itself is the
// ordinary periodic sync, as in Consul — a catalog write does not poke the
// agent.
func TestAPIE2EAntiEntropy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real agent process")
	}
	const interval = 3 * time.Second
	_, c := devAgent(t, []string{"CAIRN_AE_INTERVAL=" + interval.String()})
	err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "db1", Name: "db", Port: 5432})
	if err != nil {
		t.Fatal(err)
	}
	self, err := c.Agent().NodeName()
	if err != nil {
		t.Fatal(err)
	}
	inCatalog := func() (bool, error) {
		svcs, _, err := c.Catalog().Service("db", "", nil)
		if err != nil {
			return false, err
		}
		for _, s := range svcs {
			if s.ServiceID == "db1" && s.Node == self {
				return true, nil
			}
		}
		return false, nil
	}
	testutil.Eventually(t, 10*time.Second, "db1 synced to catalog", func() error {
		if ok, err := inCatalog(); err != nil || !ok {
			return fmt.Errorf("not in catalog (%v)", err)
		}
		return nil
	})

	if _, err := c.Catalog().Deregister(&api.CatalogDeregistration{Node: self, ServiceID: "db1"}, nil); err != nil {
		t.Fatalf("catalog deregister: %v", err)
	}
	// A full sync landing in the few ms between the deregister and this
	// read would hide the removal; with a 3 s period that is ~0.1%.
	if ok, err := inCatalog(); err != nil || ok {
		t.Fatalf("db1 still in catalog right after deregister (%v)", err)
	}
	start := time.Now()
	// One full sync: interval + stagger in [0, interval) for a 1-node
	// cluster, so 2×interval plus slack.
	testutil.Eventually(t, 2*interval+5*time.Second, "db1 restored by anti-entropy", func() error {
		if ok, err := inCatalog(); err != nil || !ok {
			return fmt.Errorf("not restored (%v)", err)
		}
		return nil
	})
	t.Logf("anti-entropy restored db1 after %v", time.Since(start).Round(10*time.Millisecond))
	// The agent's own record is untouched.
	if svcs, err := c.Agent().Services(); err != nil || svcs["db1"] == nil {
		t.Fatalf("agent services = %v, %v", svcs, err)
	}
}
