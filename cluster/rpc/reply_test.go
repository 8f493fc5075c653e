package rpc

import (
	"context"
	"testing"

	"github.com/cairnd/cairn/cluster/structs"
)

// A reply that already holds pointers (a server's own read, made before
// the request was forwarded to a new leader, hands Call rows owned by its
// state store) must be replaced, not decoded into: msgpack decodes a slice
// element into the struct its pointer already points at, which rewrote
// the store's rows and made replicas serve different catalogs (chaos
// pause-leader, issue 13). Map entries the response lacks must not
// survive either.
func TestCallReplacesReplyContents(t *testing.T) {
	ts := startServer(t, Limits{})
	ts.srv.Handle("Test.ServiceNodes", func(ctx context.Context, dec Decoder) (any, error) {
		var req structs.ServiceSpecificRequest
		if err := dec.Decode(&req); err != nil {
			return nil, err
		}
		return &structs.IndexedServiceNodes{
			ServiceNodes: []*structs.ServiceNode{{Node: "n1", ServiceID: "web-2", ServiceName: "web"}},
			QueryMeta:    structs.QueryMeta{Index: 9},
		}, nil
	})
	ts.srv.Handle("Test.NodeServices", func(ctx context.Context, dec Decoder) (any, error) {
		var req structs.NodeSpecificRequest
		if err := dec.Decode(&req); err != nil {
			return nil, err
		}
		return &structs.IndexedNodeServices{NodeServices: &structs.NodeServices{
			Node:     &structs.Node{Node: "n1"},
			Services: map[string]*structs.NodeService{"web-2": {ID: "web-2", Service: "web"}},
		}}, nil
	})
	s := dial(t, ts.addr)
	ctx := context.Background()

	owned := &structs.ServiceNode{Node: "n1", ServiceID: "web-3", ServiceName: "web"}
	reply := structs.IndexedServiceNodes{ServiceNodes: []*structs.ServiceNode{owned}}
	if err := s.Call(ctx, "Test.ServiceNodes", &structs.ServiceSpecificRequest{ServiceName: "web"}, &reply); err != nil {
		t.Fatal(err)
	}
	if owned.ServiceID != "web-3" {
		t.Errorf("Call wrote the response into a row the reply already pointed at: it now says %q, want web-3", owned.ServiceID)
	}
	if len(reply.ServiceNodes) != 1 || reply.ServiceNodes[0].ServiceID != "web-2" || reply.Index != 9 {
		t.Errorf("reply = %+v, want the one row web-2 at index 9", reply)
	}

	ownedSvc := &structs.NodeService{ID: "web-3", Service: "web"}
	ns := structs.IndexedNodeServices{NodeServices: &structs.NodeServices{
		Node:     &structs.Node{Node: "n1"},
		Services: map[string]*structs.NodeService{"web-3": ownedSvc},
	}}
	if err := s.Call(ctx, "Test.NodeServices", &structs.NodeSpecificRequest{Node: "n1"}, &ns); err != nil {
		t.Fatal(err)
	}
	if got := ns.NodeServices.Services; len(got) != 1 || got["web-2"] == nil {
		t.Errorf("services = %v, want only web-2 (no entry left from before the call)", got)
	}
	if ownedSvc.ID != "web-3" {
		t.Errorf("Call wrote into a service the reply already pointed at: %q", ownedSvc.ID)
	}
}
