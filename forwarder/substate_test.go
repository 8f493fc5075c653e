package forwarder

import (
	"testing"
	"unsafe"

	"github.com/cairnd/cairn/cluster/stream"
)

// TestSubStateRequest: a subscription is remembered in 24 bytes (a client
// agent holds one per cached name) and re-sent as its source's Request,
// resuming at the index of the last result delivered.
func TestSubStateRequest(t *testing.T) {
	if n := unsafe.Sizeof(subState{}); n > 24 {
		t.Errorf("subState is %d bytes, want at most 24", n)
	}
	src := &stream.Fixed{Topic: stream.TopicServiceHealth, Key: "web", Tag: "v2", PassingOnly: true,
		Op: stream.OpUnsubscribe, ID: 3, Datacenter: "dc9", Index: 40} // the last four are the subscriber's
	st := subState{src: src, index: 42}
	want := stream.Request{Op: stream.OpSubscribe, ID: 7, Topic: stream.TopicServiceHealth, Key: "web",
		Tag: "v2", PassingOnly: true, Datacenter: "dc1", Index: 42}
	if got := st.request(7, "dc1"); got != want {
		t.Fatalf("re-sent request = %+v, want %+v", got, want)
	}
}
