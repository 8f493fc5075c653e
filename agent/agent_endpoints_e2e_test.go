package agent_test

import (
	"fmt"
	"io"
	nethttp "net/http"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/cairnd/cairn/cluster/testutil"
)

// TestAgentEndpointsE2E drives issue 17 part 3 with the official client
// against a real dev agent: Agent().Service with hash blocking,
// AgentHealthServiceByName/ByID for passing, warning and critical,
// ?format=text, Agent().Version, Catalog().NodeServiceList and the
// headers of a write.
func TestAgentEndpointsE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real agent process")
	}
	p, c := devAgent(t, nil)
	ag := c.Agent()
	reg := &api.AgentServiceRegistration{
		ID: "api1", Name: "api", Port: 9000, Tags: []string{"v1"}, Meta: map[string]string{"k": "v"},
		Check: &api.AgentServiceCheck{CheckID: "api1-ttl", TTL: "30s"},
	}
	if err := ag.ServiceRegister(reg); err != nil {
		t.Fatal(err)
	}

	// Agent().Service: the full definition with a ContentHash.
	svc, qm, err := ag.Service("api1", nil)
	if err != nil || svc.Port != 9000 || svc.Service != "api" || svc.ContentHash == "" || svc.Meta["k"] != "v" {
		t.Fatalf("Service = %+v, %v", svc, err)
	}
	if qm.LastContentHash != svc.ContentHash {
		t.Errorf("X-Consul-ContentHash = %q, body ContentHash %q", qm.LastContentHash, svc.ContentHash)
	}
	if _, _, err := ag.Service("nope", nil); err == nil {
		t.Error("Service(unknown) succeeded, want 404")
	}

	// Hash blocking: a read with the current hash returns when the
	// definition changes, with the new hash.
	type result struct {
		s   *api.AgentService
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, _, err := ag.Service("api1", &api.QueryOptions{WaitHash: svc.ContentHash, WaitTime: 30 * time.Second})
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("blocking Service returned before any change: %+v, %v", r.s, r.err)
	case <-time.After(300 * time.Millisecond): // the read must still be blocked
	}
	reg.Port = 9001
	if err := ag.ServiceRegister(reg); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || r.s.Port != 9001 || r.s.ContentHash == svc.ContentHash {
			t.Fatalf("blocked Service = %+v, %v; want port 9001 and a new hash", r.s, r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("hash-blocked Service did not return after the change")
	}

	// Health by name and ID: Consul's status for each TTL state.
	for _, tc := range []struct {
		status, want string
		code         int
	}{
		{api.HealthPassing, api.HealthPassing, 200},
		{api.HealthWarning, api.HealthWarning, 429},
		{api.HealthCritical, api.HealthCritical, 503},
	} {
		if err := ag.UpdateTTL("api1-ttl", "", tc.status); err != nil {
			t.Fatal(err)
		}
		st, infos, err := ag.AgentHealthServiceByName("api")
		if err != nil || st != tc.want || len(infos) != 1 || infos[0].Service.ID != "api1" ||
			infos[0].AggregatedStatus != tc.want || len(infos[0].Checks) != 1 {
			t.Errorf("%s: ByName = %q, %+v, %v", tc.status, st, infos, err)
		}
		st, info, err := ag.AgentHealthServiceByID("api1")
		if err != nil || st != tc.want || info == nil || info.Service.Port != 9001 {
			t.Errorf("%s: ByID = %q, %+v, %v", tc.status, st, info, err)
		}
		resp, err := nethttp.Get("http://" + p.HTTPAddr() + "/v1/agent/health/service/name/api?format=text")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || string(body) != tc.want {
			t.Errorf("%s: format=text = %d %q, want %d %q", tc.status, resp.StatusCode, body, tc.code, tc.want)
		}
	}
	// An unknown service is Consul's 404, which the client reads as critical.
	if st, infos, err := ag.AgentHealthServiceByName("nope"); err != nil || st != api.HealthCritical || infos != nil {
		t.Errorf("ByName(unknown) = %q, %v, %v", st, infos, err)
	}

	v, err := ag.Version()
	if err != nil || v["HumanVersion"] == "" {
		t.Errorf("Version = %v, %v", v, err)
	}

	node, err := ag.NodeName()
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "api1 in node-services", func() error {
		l, _, err := c.Catalog().NodeServiceList(node, nil)
		if err != nil {
			return err
		}
		if l == nil || l.Node == nil || l.Node.Node != node {
			return fmt.Errorf("node-services = %+v", l)
		}
		for _, s := range l.Services {
			if s.ID == "api1" && s.Port == 9001 {
				return nil
			}
		}
		return fmt.Errorf("api1 not in %d services", len(l.Services))
	})

	// A write answers with JSON's Content-Type and Consul's agent headers.
	req, _ := nethttp.NewRequest(nethttp.MethodPut, "http://"+p.HTTPAddr()+"/v1/agent/check/pass/api1-ttl", nil)
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" ||
		resp.Header.Get("X-Consul-Default-Acl-Policy") == "" || resp.Header.Get("X-Consul-Index") == "" {
		t.Errorf("write answer = %d %v", resp.StatusCode, resp.Header)
	}
}
