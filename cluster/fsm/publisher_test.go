package fsm

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/cairnd/cairn/cluster/structs"
)

// recorder is a Publisher that writes down what it hears.
type recorder struct{ log []string }

func (r *recorder) Changed(idx uint64, services, nodes []string) {
	r.log = append(r.log, fmt.Sprintf("%d services=%v nodes=%v", idx, slices.Compact(slices.Sorted(slices.Values(services))), slices.Compact(slices.Sorted(slices.Values(nodes)))))
}

func (r *recorder) Reset() { r.log = append(r.log, "reset") }

// Applied writes reach the publisher with the names they touched, KV and
// no-op writes do not, and a restore resets it and keeps it installed on
// the new store.
func TestPublisherHearsAppliesAndRestores(t *testing.T) {
	f := New(nil)
	rec := &recorder{}
	f.SetPublisher(rec)
	reg := &structs.RegisterRequest{Node: "n1", Address: "10.0.0.1",
		Service: &structs.NodeService{ID: "web", Service: "web", Port: 80},
		Check:   &structs.HealthCheck{CheckID: "c", ServiceID: "web", Status: structs.HealthPassing}}
	f.Apply(cmd(1, encode(t, structs.RegisterRequestType, reg)))
	f.Apply(cmd(2, kvs(t, structs.KVSet, "k", "v", 0)))
	f.Apply(cmd(3, encode(t, structs.RegisterRequestType, reg))) // changes nothing

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	if err := f.Restore(readCloser{bytes.NewReader(sink.Bytes())}); err != nil {
		t.Fatal(err)
	}
	f.Apply(cmd(4, encode(t, structs.DeregisterRequestType, &structs.DeregisterRequest{Node: "n1", CheckID: "c"})))
	want := []string{
		"1 services=[web] nodes=[n1]",
		"reset",
		"4 services=[web] nodes=[n1]",
	}
	if !slices.Equal(rec.log, want) {
		t.Fatalf("publisher heard\n%q\nwant\n%q", rec.log, want)
	}
}
