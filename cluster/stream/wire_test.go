package stream

import (
	"reflect"
	"testing"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/hashicorp/go-msgpack/v2/codec"
)

// appendEvent's hand-built frames decode exactly as the struct encoding.
func TestAppendEventDecodesAsEvent(t *testing.T) {
	if n := reflect.TypeOf(Event{}).NumField(); n != 6 {
		t.Fatalf("Event has %d fields; appendEvent writes 6: update it", n)
	}
	health := []structs.CheckServiceNode{{
		Node:    &structs.Node{Node: "n1", Address: "10.0.0.1", Meta: map[string]string{"b": "2", "a": "1"}},
		Service: &structs.NodeService{ID: "web", Service: "web", Tags: []string{"v1"}, Port: 80},
		Checks:  []*structs.HealthCheck{{CheckID: "c", Status: structs.HealthCritical}},
	}}
	node := &structs.Node{Node: "n1", Address: "10.0.0.1"}
	for _, tc := range []struct {
		topic Topic
		want  Event
	}{
		{TopicServiceHealth, Event{ID: 1, Kind: KindSnapshot, Index: 1 << 40, Health: health}},
		{TopicServiceHealth, Event{ID: 1<<64 - 1, Kind: KindUpdate, Index: 7, Health: []structs.CheckServiceNode{}}},
		{TopicServiceHealth, Event{ID: 3, Kind: KindResumed, Index: 9}},
		{TopicNode, Event{ID: 4, Kind: KindUpdate, Index: 2, Node: node}},
		{TopicNode, Event{ID: 5, Kind: KindSnapshot, Index: 2}},
	} {
		var body []byte
		var v any = tc.want.Health
		if tc.topic == TopicNode {
			v = tc.want.Node
		}
		if tc.want.Kind != KindResumed {
			if err := codec.NewEncoderBytes(&body, canonicalHandle()).Encode(v); err != nil {
				t.Fatal(err)
			}
		}
		frame := appendEvent(nil, tc.want.ID, tc.want.Kind, tc.want.Index, tc.topic, body)
		var got, viaStruct Event
		if err := codec.NewDecoderBytes(frame, structs.MsgpackHandle()).Decode(&got); err != nil {
			t.Fatalf("%+v: %v", tc.want, err)
		}
		if err := codec.NewDecoderBytes(encode(t, &tc.want), structs.MsgpackHandle()).Decode(&viaStruct); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, viaStruct) {
			t.Errorf("hand-built frame decodes to\n%+v\nstruct encoding to\n%+v", got, viaStruct)
		}
	}
}
