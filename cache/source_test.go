package cache

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/cairnd/cairn/resolver"
)

// fakeState is a LocalState of one node with two services.
type fakeState struct{}

var (
	stateNode = &structs.Node{Node: "s1", Address: "10.0.0.1", Datacenter: "dc1", Meta: map[string]string{"rack": "a"}}
	stateRows = map[string][]structs.CheckServiceNode{
		"web": {{Node: stateNode, Service: &structs.NodeService{ID: "web1", Service: "web", Address: "2001:db8::1", Port: 80,
			Weights: &structs.Weights{Passing: 3, Warning: 1}}, Checks: []*structs.HealthCheck{{Status: structs.HealthWarning}}}},
		"db": {{Node: stateNode, Service: &structs.NodeService{ID: "db1", Service: "db", Port: 5432}}},
	}
)

func (fakeState) CheckServiceNodes(service, _ string, _ bool) (uint64, []structs.CheckServiceNode) {
	return 7, stateRows[service]
}
func (fakeState) Node(name string) (uint64, *structs.Node) {
	if name == stateNode.Node {
		return 7, stateNode
	}
	return 7, nil
}
func (fakeState) Nodes() (uint64, []*structs.Node) { return 7, []*structs.Node{stateNode} }
func (fakeState) Services() (uint64, map[string][]string) {
	return 7, map[string][]string{"web": nil, "db": nil}
}

// TestSource: the server-side Catalog reads its own datacenter from the
// state store (when stale reads are allowed), everything else through
// RPC, and maps "no path to datacenter" to the resolver's NXDOMAIN error.
func TestSource(t *testing.T) {
	var methods []string
	rpc := func(_ context.Context, method string, args, reply any) error {
		methods = append(methods, method)
		switch a := args.(type) {
		case *structs.ServiceSpecificRequest:
			if a.Datacenter == "dc9" {
				return structs.ErrNoPathToDC
			}
			reply.(*structs.IndexedCheckServiceNodes).Nodes = stateRows[a.ServiceName]
			return nil
		case *structs.DCSpecificRequest:
			return errors.New("tier down")
		}
		return errors.New("unsupported")
	}
	src := &Source{Datacenter: "dc1", RPC: rpc, AllowStale: true, Local: func() LocalState { return fakeState{} }}
	ctx := context.Background()

	insts, err := src.ServiceNodes(ctx, "", "web", "", false, nil)
	if err != nil || len(insts) != 1 || len(methods) != 0 {
		t.Fatalf("local web: %v %v, rpc %v", insts, err, methods)
	}
	want := resolver.Instance{
		Node:    resolver.Node{Name: "s1", Address: "10.0.0.1", Datacenter: "dc1", Meta: map[string]string{"rack": "a"}},
		Service: "web", Address: "2001:db8::1", Port: 80,
		Weights: resolver.Weights{Passing: 3, Warning: 1}, Status: resolver.StatusWarning,
	}
	if got := insts[0]; got.Service != want.Service || got.Address != want.Address || got.Weights != want.Weights ||
		got.Status != want.Status || got.Node.Name != want.Node.Name || got.Node.Meta["rack"] != "a" {
		t.Fatalf("converted %+v, want %+v", got, want)
	}
	if n, err := src.Node(ctx, "dc1", "s1"); err != nil || n == nil || n.Address != "10.0.0.1" {
		t.Fatalf("node: %v %v", n, err)
	}
	if n, err := src.Node(ctx, "dc1", "nope"); err != nil || n != nil {
		t.Fatalf("unknown node: %v %v", n, err)
	}
	// The PTR scan matches the canonical form of the service address.
	got, err := src.ServicesByAddress(ctx, "", "2001:db8:0::1")
	if err != nil || len(got) != 1 || got[0].Address != "2001:db8::1" || got[0].Node.Name != "s1" {
		t.Fatalf("by address: %v %v", got, err)
	}

	// Another datacenter goes through RPC; an unknown one is NXDOMAIN.
	if insts, err := src.ServiceNodes(ctx, "dc2", "db", "", false, nil); err != nil || len(insts) != 1 {
		t.Fatalf("dc2 db: %v %v", insts, err)
	}
	if _, err := src.ServiceNodes(ctx, "dc9", "db", "", false, nil); !errors.Is(err, resolver.ErrNoSuchDatacenter) {
		t.Fatalf("dc9: %v, want ErrNoSuchDatacenter", err)
	}
	if _, err := src.Nodes(ctx, "dc2"); err == nil || errors.Is(err, resolver.ErrNoSuchDatacenter) {
		t.Fatalf("tier down: %v, want the RPC error", err)
	}
	if !slices.Equal(methods, []string{structs.MethodHealthServiceNodes, structs.MethodHealthServiceNodes, structs.MethodCatalogListNodes}) {
		t.Fatalf("rpc calls %v", methods)
	}

	// Without stale reads even the local datacenter asks the leader.
	methods = nil
	src.AllowStale = false
	if _, err := src.ServiceNodes(ctx, "dc1", "web", "", false, nil); err != nil || len(methods) != 1 {
		t.Fatalf("consistent read: %v, rpc %v", err, methods)
	}
}
