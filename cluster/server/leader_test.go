package server

import (
	"net"
	"testing"

	"github.com/cairnd/cairn/cluster/gossip"
	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/hashicorp/serf/serf"
)

// TestReconcileKeepsAgentRegistration: the leader builds a member's
// serfHealth registration from its state, and Raft applies it after
// whatever was in flight, such as the agent's own registration of its node
// with meta and tagged addresses. That registration must survive. Before
// the fix, a node absent when the request was built was rewritten with
// empty meta (TestConsulConfigAndFilterE2E saw the meta filter come back
// empty after a fresh leader's reconcile).
func TestReconcileKeepsAgentRegistration(t *testing.T) {
	agentReg := func(addr string) *structs.RegisterRequest {
		return &structs.RegisterRequest{
			Datacenter: "dc1", Node: "web-1", Address: addr,
			NodeMeta:        map[string]string{"os": "linux"},
			TaggedAddresses: map[string]string{"lan": addr},
		}
	}
	client := serf.Member{Name: "web-1", Addr: net.ParseIP("10.0.0.5"), Tags: map[string]string{gossip.TagID: "id-1"}}
	server := serf.Member{Name: "web-1", Addr: net.ParseIP("10.0.0.5"),
		Tags: map[string]string{gossip.TagID: "id-1", gossip.TagRole: gossip.RoleServer, gossip.TagPort: "8300"}}
	moved := serf.Member{Name: "web-1", Addr: net.ParseIP("10.0.0.9"), Tags: map[string]string{gossip.TagID: "id-1"}}

	cases := []struct {
		name     string
		before   *structs.RegisterRequest // in the state when the request is built
		member   serf.Member
		inFlight *structs.RegisterRequest // applied between build and apply
		wantAddr string
		wantMeta bool
	}{
		{name: "absent node, agent registers meanwhile", member: client, inFlight: agentReg("10.0.0.5"), wantAddr: "10.0.0.5", wantMeta: true},
		{name: "absent server node, agent registers meanwhile", member: server, inFlight: agentReg("10.0.0.5"), wantAddr: "10.0.0.5", wantMeta: true},
		{name: "absent node, nothing in flight", member: client, wantAddr: "10.0.0.5"},
		{name: "known node, same address", before: agentReg("10.0.0.5"), member: client, wantAddr: "10.0.0.5", wantMeta: true},
		{name: "known node, new address keeps meta", before: agentReg("10.0.0.5"), member: moved, wantAddr: "10.0.0.9", wantMeta: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := state.New()
			idx := uint64(1)
			apply := func(req *structs.RegisterRequest) {
				t.Helper()
				if err := st.EnsureRegistration(idx, req); err != nil {
					t.Fatal(err)
				}
				idx++
			}
			if tc.before != nil {
				apply(tc.before)
			}
			req := reconcileRegistration(st, "dc1", tc.member, structs.HealthPassing, "Agent alive and reachable")
			if req == nil {
				t.Fatal("no registration for a node without serfHealth")
			}
			if tc.inFlight != nil {
				apply(tc.inFlight)
			}
			apply(req)
			_, n := st.Node("web-1")
			if n == nil {
				t.Fatal("node missing")
			}
			if n.Address != tc.wantAddr {
				t.Errorf("address %q, want %q", n.Address, tc.wantAddr)
			}
			if got := n.Meta["os"] == "linux"; got != tc.wantMeta {
				t.Errorf("node meta %v, want os=linux kept: %v", n.Meta, tc.wantMeta)
			}
			_, checks := st.NodeChecks("web-1")
			var serfOK bool
			for _, c := range checks {
				serfOK = serfOK || c.CheckID == structs.SerfCheckID && c.Status == structs.HealthPassing
			}
			if !serfOK {
				t.Errorf("serfHealth not passing: %v", checks)
			}
			if reconcileRegistration(st, "dc1", tc.member, structs.HealthPassing, "Agent alive and reachable") != nil {
				t.Error("a second reconcile still finds something to register")
			}
		})
	}
}
