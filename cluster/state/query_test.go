package state

import (
	"bufio"
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/serf/coordinate"

	"github.com/cairnd/cairn/cluster/structs"
)

func TestPreparedQueryWrites(t *testing.T) {
	s := New()
	q := &structs.PreparedQuery{ID: "11111111-2222-3333-4444-555555555555", Name: "web", Service: structs.ServiceQuery{Service: "web"}}
	if err := s.PreparedQuerySet(1, q, false); err != nil {
		t.Fatal(err)
	}
	dup := &structs.PreparedQuery{ID: "11111111-2222-3333-4444-555555555556", Name: "web"}
	if err := s.PreparedQuerySet(2, dup, false); !errors.Is(err, structs.ErrInvalidRequest) {
		t.Errorf("duplicate name: %v, want an invalid request", err)
	}
	uuidName := &structs.PreparedQuery{ID: "x", Name: "11111111-2222-3333-4444-555555555557"}
	if err := s.PreparedQuerySet(2, uuidName, false); !errors.Is(err, structs.ErrInvalidRequest) {
		t.Errorf("UUID-shaped name: %v", err)
	}
	upd := *q
	upd.Name = "web2"
	if err := s.PreparedQuerySet(3, &upd, true); err != nil {
		t.Fatal(err)
	}
	if idx, got := s.PreparedQueryGet(q.ID); idx != 3 || got.CreateIndex != 1 || got.ModifyIndex != 3 || got.Name != "web2" {
		t.Errorf("after update: %d %+v", idx, got)
	}
	if _, got, _ := s.PreparedQueryResolve("web"); got != nil {
		t.Errorf("old name still resolves: %+v", got)
	}
	if err := s.PreparedQuerySet(4, &structs.PreparedQuery{ID: "nope"}, true); !errors.Is(err, structs.ErrQueryNotFound) {
		t.Errorf("update of unknown: %v", err)
	}
	if err := s.PreparedQueryDelete(5, q.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.PreparedQueryDelete(6, q.ID); !errors.Is(err, structs.ErrQueryNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

func TestPreparedQueryResolveTemplates(t *testing.T) {
	s := New()
	for i, q := range []*structs.PreparedQuery{
		{Name: "", Template: structs.QueryTemplate{Type: structs.QueryTemplateNamePrefixMatch}, Service: structs.ServiceQuery{Service: "${name.full}"}},
		{Name: "geo-db-", Template: structs.QueryTemplate{Type: structs.QueryTemplateNamePrefixMatch},
			Service: structs.ServiceQuery{Service: "db-${name.suffix}", Tags: []string{"${name.prefix}", "x"}}},
		{Name: "geo-", Template: structs.QueryTemplate{Type: structs.QueryTemplateNamePrefixMatch, Regexp: `^geo-([a-z]+)-(.*)$`, RemoveEmptyTags: true},
			Service: structs.ServiceQuery{Service: "${match(1)}", Tags: []string{"${match(2)}", "${match(9)}"}}},
		{Name: "geo-db-exact", Service: structs.ServiceQuery{Service: "exact"}},
	} {
		q.ID = string(rune('a'+i)) + "-id"
		if err := s.PreparedQuerySet(uint64(i+1), q, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, service string
		tags          []string
	}{
		{"geo-db-eu", "db-eu", []string{"geo-db-", "x"}}, // longest prefix wins
		{"geo-db-exact", "exact", nil},                   // an exact name beats templates
		{"geo-web-v2", "web", []string{"v2"}},            // regexp matches, empty tag removed
		{"anything", "anything", nil},                    // the catch-all
		{"b-id", "db-b-id", []string{"geo-db-", "x"}},    // by ID: rendered with the ID as name
	} {
		_, q, err := s.PreparedQueryResolve(tc.name)
		if err != nil || q == nil {
			t.Fatalf("%s: %+v, %v", tc.name, q, err)
		}
		if q.Service.Service != tc.service || (len(tc.tags) > 0 && !reflect.DeepEqual(q.Service.Tags, tc.tags)) {
			t.Errorf("%s: service %q tags %q, want %q %q", tc.name, q.Service.Service, q.Service.Tags, tc.service, tc.tags)
		}
	}
	// Rendering copies: the stored template is untouched.
	if _, q := s.PreparedQueryGet("b-id"); q.Service.Service != "db-${name.suffix}" || q.Service.Tags[0] != "${name.prefix}" {
		t.Errorf("stored template changed: %+v", q.Service)
	}
}

func TestSnapshotQueriesAndCoordinates(t *testing.T) {
	s := New()
	mustRegister(t, s, 1, webReq("a", "10.0.0.1", 80, structs.HealthPassing))
	if err := s.PreparedQuerySet(2, &structs.PreparedQuery{ID: "q1", Name: "web", Service: structs.ServiceQuery{Service: "web", Tags: []string{"!v2"}}, DNS: structs.QueryDNSOptions{TTL: "5s"}}, false); err != nil {
		t.Fatal(err)
	}
	c := coordinate.NewCoordinate(coordinate.DefaultConfig())
	c.Vec[0] = 0.25
	if err := s.CoordinateBatchUpdate(3, []structs.Coordinate{{Node: "a", Coord: c}, {Node: "not-in-catalog", Coord: c}}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Snapshot().Persist(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := Restore(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if _, q, _ := r.PreparedQueryResolve("web"); q == nil || q.ID != "q1" || q.DNS.TTL != "5s" || q.Service.Tags[0] != "!v2" {
		t.Errorf("restored query %+v", q)
	}
	idx, coords := r.Coordinates()
	if idx != 3 || len(coords) != 1 || coords[0].Node != "a" || coords[0].Coord.Vec[0] != 0.25 {
		t.Errorf("restored coordinates %d %+v", idx, coords)
	}
	if r.TableIndex(TablePreparedQueries) != 2 {
		t.Errorf("restored query table index %d", r.TableIndex(TablePreparedQueries))
	}
}

// TestRestoreOlderSnapshot: a snapshot written before the query and
// coordinate tables existed (4 table indexes, no such records) restores
// with those tables empty.
func TestRestoreOlderSnapshot(t *testing.T) {
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	enc := codec.NewEncoder(bw, structs.MsgpackHandle())
	for _, v := range []any{
		&snapshotHeader{Version: snapshotVersion, TableIndexes: []uint64{7, 7, 7, 3}},
		recNode, &structs.Node{Node: "a", Address: "10.0.0.1"},
		recEnd,
	} {
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	bw.Flush()
	r, err := Restore(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, n := r.Node("a"); n == nil || r.TableIndex(TableKVS) != 3 || r.TableIndex(TableCoordinates) != 0 {
		t.Errorf("restored %+v, kvs index %d", n, r.TableIndex(TableKVS))
	}
	if _, qs := r.PreparedQueryList(); len(qs) != 0 {
		t.Errorf("queries %+v", qs)
	}
}
