package forwarder

import (
	"testing"
	"unsafe"

	"github.com/cairnd/cairn/cluster/stream"
)

// TestSubStateRequest: a subscription is remembered in 48 bytes (a client
// agent holds one per cached name) and re-sent as the Request it was
// made from, resuming at the index of the last result delivered.
func TestSubStateRequest(t *testing.T) {
	if n := unsafe.Sizeof(subState{}); n > 48 {
		t.Errorf("subState is %d bytes, want at most 48", n)
	}
	req := stream.Request{Op: stream.OpSubscribe, ID: 7, Topic: stream.TopicServiceHealth, Key: "web",
		Tag: "v2", PassingOnly: true, Datacenter: "dc1", Index: 40}
	st := subState{key: req.Key, tag: req.Tag, index: 42, topic: req.Topic, passing: req.PassingOnly}
	want := req
	want.Index = 42
	if got := st.request(7, "dc1"); got != want {
		t.Fatalf("re-sent request = %+v, want %+v", got, want)
	}
}
