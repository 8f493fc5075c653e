package fsm

import (
	"errors"
	"testing"

	"github.com/hashicorp/serf/coordinate"

	"github.com/cairnd/cairn/cluster/structs"
)

// TestApplyQueriesAndCoordinates: MessageType 11 creates, updates and
// deletes prepared queries (refusals come back as the entry's response);
// 12 stores coordinates of catalog nodes.
func TestApplyQueriesAndCoordinates(t *testing.T) {
	f := New(nil)
	q := func(op structs.PreparedQueryOp, id, name string) []byte {
		return encode(t, structs.PreparedQueryRequestType, &structs.PreparedQueryRequest{Op: op,
			Query: &structs.PreparedQuery{ID: id, Name: name, Service: structs.ServiceQuery{Service: "web"}}})
	}
	for i, tc := range []struct {
		data []byte
		err  error
	}{
		{q(structs.PreparedQueryCreate, "id1", "web"), nil},
		{q(structs.PreparedQueryCreate, "id2", "web"), structs.ErrInvalidRequest}, // name taken
		{q(structs.PreparedQueryUpdate, "id1", "web2"), nil},
		{q(structs.PreparedQueryUpdate, "id9", "x"), structs.ErrQueryNotFound},
		{q(structs.PreparedQueryDelete, "id1", ""), nil},
		{q(structs.PreparedQueryDelete, "id1", ""), structs.ErrQueryNotFound},
	} {
		resp := f.Apply(cmd(uint64(i+1), tc.data))
		err, _ := resp.(error)
		if (tc.err == nil) != (err == nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
			t.Errorf("entry %d: response %v, want %v", i+1, resp, tc.err)
		}
	}
	if _, qs := f.State().PreparedQueryList(); len(qs) != 0 {
		t.Errorf("queries left: %+v", qs)
	}

	reg := encode(t, structs.RegisterRequestType, &structs.RegisterRequest{Node: "a", Address: "10.0.0.1"})
	if resp := f.Apply(cmd(10, reg)); resp != nil {
		t.Fatal(resp)
	}
	c := coordinate.NewCoordinate(coordinate.DefaultConfig())
	batch := encode(t, structs.CoordinateBatchUpdateType, &structs.CoordinateBatchUpdateRequest{
		Updates: []structs.Coordinate{{Node: "a", Coord: c}, {Node: "unknown", Coord: c}}})
	if resp := f.Apply(cmd(11, batch)); resp != nil {
		t.Fatal(resp)
	}
	if idx, cs := f.State().Coordinates(); idx != 11 || len(cs) != 1 || cs[0].Node != "a" {
		t.Errorf("coordinates %d %+v", idx, cs)
	}
}
