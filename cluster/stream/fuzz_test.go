package stream

import (
	"context"
	"testing"

	"github.com/cairnd/cairn/cluster/state"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/hashicorp/go-msgpack/v2/codec"
)

func encode(t testing.TB, v any) []byte {
	var b []byte
	if err := codec.NewEncoderBytes(&b, structs.MsgpackHandle()).Encode(v); err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzRequest feeds arbitrary client frames through the server's decoder
// and request handling: nothing panics, a refused request leaves no
// subscription, and a live one is indexed for its key.
func FuzzRequest(f *testing.F) {
	for _, r := range []Request{
		{Op: OpSubscribe, ID: 1, Topic: TopicServiceHealth, Key: "web", Tag: "v1", PassingOnly: true, Datacenter: "dc1", Index: 9},
		{Op: OpSubscribe, ID: 2, Topic: TopicNode, Key: "n1"},
		{Op: OpUnsubscribe, ID: 1},
		{Op: 3, ID: 1},
		{Op: OpSubscribe, ID: 1, Topic: 9, Key: "x"},
	} {
		f.Add(encode(f, &r))
	}
	f.Add([]byte{0x80})
	f.Add([]byte{0xc1})
	store := state.New()
	f.Fuzz(func(t *testing.T, frame []byte) {
		p, err := NewPublisher(Config{Datacenter: "dc1", State: func() State { return store }})
		if err != nil {
			t.Fatal(err)
		}
		var r Request
		if err := codec.NewDecoderBytes(frame, structs.MsgpackHandle()).Decode(&r); err != nil {
			return
		}
		s := newSession(context.Background(), p, nil)
		s.closed = true // no sender: the frames go nowhere
		if err := s.apply(&r); err != nil {
			t.Fatalf("apply on a live session: %v", err)
		}
		valid := r.Validate() == nil && (r.Datacenter == "" || r.Datacenter == "dc1")
		live := len(s.subs)
		switch {
		case r.Op == OpSubscribe && valid:
			if live != 1 || len(p.byKey[topicKey{r.Topic, r.Key}]) != 1 {
				t.Fatalf("valid %+v: %d subscriptions, index %v", r, live, p.byKey)
			}
		case live != 0 || len(p.byKey) != 0:
			t.Fatalf("%+v left %d subscriptions", r, live)
		}
		if r.Op != OpUnsubscribe && !valid && len(s.errs) != 1 {
			t.Fatalf("invalid %+v: %d refusals queued, want 1", r, len(s.errs))
		}
	})
}

// FuzzEvent decodes arbitrary server frames as the client does.
func FuzzEvent(f *testing.F) {
	f.Add(encode(f, &Event{ID: 1, Kind: KindSnapshot, Index: 3, Health: []structs.CheckServiceNode{{
		Node: &structs.Node{Node: "n1", Address: "10.0.0.1"}, Service: &structs.NodeService{Service: "web"},
		Checks: []*structs.HealthCheck{{CheckID: "c", Status: structs.HealthPassing}},
	}}}))
	f.Add(encode(f, &Event{ID: 2, Kind: KindError, Error: "no"}))
	f.Fuzz(func(t *testing.T, frame []byte) {
		var ev Event
		_ = codec.NewDecoderBytes(frame, structs.MsgpackHandle()).Decode(&ev)
		_ = ev.Kind.String()
	})
}
